from __future__ import annotations

import datetime

import msgspec


class Credentials(msgspec.Struct, forbid_unknown_fields=False):
    email: str
    password: str


class PasswordChange(msgspec.Struct):
    current_password: str
    new_password: str


class Me(msgspec.Struct):
    id: str
    email: str
    created_at: datetime.datetime


class AccountDeletion(msgspec.Struct):
    current_password: str
