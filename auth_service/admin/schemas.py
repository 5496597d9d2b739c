from __future__ import annotations

from typing import Any

import msgspec


class RolesUpdate(msgspec.Struct, forbid_unknown_fields=True):
    roles: list[str]


class ClientCreate(msgspec.Struct, forbid_unknown_fields=True):
    client_id: str
    scopes: list[str]
    audiences: list[str] = msgspec.field(default_factory=list)
    secret: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    name: str | None = None


class ClientChange(msgspec.Struct, forbid_unknown_fields=True):
    disabled: bool | None = None
    scopes: list[str] | None = None
    audiences: list[str] | None = None
    name: str | None = None


class SecretRotation(msgspec.Struct, forbid_unknown_fields=True):
    overlap: int = 86_400
