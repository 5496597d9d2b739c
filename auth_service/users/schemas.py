from __future__ import annotations

import datetime

import msgspec

from kit.text_input import Text


class Credentials(msgspec.Struct, forbid_unknown_fields=False):
    email: Text
    password: Text


class PasswordChange(msgspec.Struct):
    current_password: Text
    new_password: Text


class Me(msgspec.Struct):
    id: str
    email: str
    created_at: datetime.datetime
