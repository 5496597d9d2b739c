"""Environment settings, validated once at start.

A bad value raises `ConfigError` naming the variable; `load_or_exit` turns it into one line on
stderr and exit status 2 — never a traceback, never a silent fallback.
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Callable, Mapping
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

from limits import parse_many

T = TypeVar("T")


class ConfigError(Exception):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class Env:
    """Typed reads of environment variables; each read fails with the variable's name."""

    def __init__(self, environ: Mapping[builtins.str, builtins.str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: builtins.str) -> builtins.str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        value = self.raw(name)
        return default if value is None else value

    def optional_str(self, name: builtins.str) -> builtins.str | None:
        return self.raw(name)

    def positive_int(self, name: builtins.str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"expected a whole number, got {value!r}") from None
        if number <= 0:
            raise ConfigError(name, f"must be greater than 0, got {number}")
        return number

    def non_negative_int(self, name: builtins.str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"expected a whole number, got {value!r}") from None
        if number < 0:
            raise ConfigError(name, f"must not be negative, got {number}")
        return number

    def port(self, name: builtins.str, default: int) -> int:
        number = self.positive_int(name, default)
        if number > 65535:
            raise ConfigError(name, f"not a TCP port: {number}")
        return number

    def choice(
        self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]
    ) -> builtins.str:
        value = self.str(name, default)
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(
        self, name: builtins.str, default: builtins.str, schemes: tuple[builtins.str, ...]
    ) -> builtins.str:
        return check_url(name, self.str(name, default), schemes)

    def optional_url(
        self, name: builtins.str, schemes: tuple[builtins.str, ...]
    ) -> builtins.str | None:
        value = self.raw(name)
        return None if value is None else check_url(name, value, schemes)

    def url_list(
        self, name: builtins.str, default: builtins.str, schemes: tuple[builtins.str, ...]
    ) -> tuple[builtins.str, ...]:
        items = [item.strip() for item in self.str(name, default).split(",") if item.strip()]
        if not items:
            raise ConfigError(name, "needs at least one URL")
        return tuple(check_url(name, item, schemes).rstrip("/") for item in items)

    def csv(self, name: builtins.str, default: builtins.str = "") -> tuple[builtins.str, ...]:
        return tuple(item.strip() for item in self.str(name, default).split(",") if item.strip())

    def rate_limit(self, name: builtins.str, default: builtins.str) -> builtins.str:
        value = self.str(name, default)
        try:
            parse_many(value)
        except ValueError:
            raise ConfigError(name, f"not a rate limit in the limits notation: {value!r}") from None
        return value


def check_url(name: str, value: str, schemes: tuple[str, ...]) -> builtins.str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(name, f"malformed URL {value!r}") from None
    if parts.scheme not in schemes:
        raise ConfigError(name, f"URL scheme must be one of {', '.join(schemes)}, got {value!r}")
    needs_host = not parts.scheme.startswith("sqlite")
    if needs_host and not parts.hostname:
        raise ConfigError(name, f"URL has no host: {value!r}")
    return value


def load_or_exit(factory: Callable[[], T]) -> T:
    """Build settings or stop the process with one line naming the variable."""
    try:
        return factory()
    except ConfigError as error:
        fail(f"configuration error: {error}")


def fail(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(2)
