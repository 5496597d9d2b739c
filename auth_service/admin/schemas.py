from __future__ import annotations

from typing import Any

import msgspec

from kit.text_input import Text


class RolesUpdate(msgspec.Struct, forbid_unknown_fields=True):
    roles: list[Text]


class ClientCreate(msgspec.Struct, forbid_unknown_fields=True):
    client_id: Text
    scopes: list[Text]
    audiences: list[Text] = msgspec.field(default_factory=list)
    secret: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: Text | None = None
    name: Text | None = None


class ClientChange(msgspec.Struct, forbid_unknown_fields=True):
    disabled: bool | None = None
    scopes: list[Text] | None = None
    audiences: list[Text] | None = None
    name: Text | None = None


class SecretRotation(msgspec.Struct, forbid_unknown_fields=True):
    overlap: int = 86_400
