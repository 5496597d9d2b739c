from __future__ import annotations

import datetime
from typing import Annotated

import msgspec

from kit.text_input import Text

# What the schema can say of an address (auth_service.users.email checks its syntax). A
# password's length is counted after NFKC and answered as `weak_password` with its
# guessability (auth_service.passwords.policy), which no schema can say.
Email = Annotated[
    Text,
    msgspec.Meta(min_length=3, max_length=320, extra_json_schema={"extra": {"format": "email"}}),
]


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Text


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Text
    new_password: Text


class Me(msgspec.Struct):
    id: str
    email: str
    created_at: datetime.datetime


class AccountDeletion(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Text
