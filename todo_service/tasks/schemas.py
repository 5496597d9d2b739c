from __future__ import annotations

import datetime
from typing import Annotated

import msgspec

from kit.text_input import MultilineText, Text

# A title is one line; a description may hold line breaks and tabs (kit.text_input).
Title = Annotated[Text, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[MultilineText, msgspec.Meta(max_length=2000)]


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    description: Description = ""


class TaskUpdate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    description: Description | None = None
    completed: bool | None = None


class TaskView(msgspec.Struct):
    id: str
    title: str
    description: str
    completed: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime


class TaskPage(msgspec.Struct):
    items: list[TaskView]
    total: int
