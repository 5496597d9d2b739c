from __future__ import annotations

import datetime

import msgspec

from kit.text_input import Text


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Text


class SessionView(msgspec.Struct):
    id: str
    created_at: datetime.datetime
    last_used_at: datetime.datetime
    expires_at: datetime.datetime
    user_agent: str
    ip: str
    current: bool
