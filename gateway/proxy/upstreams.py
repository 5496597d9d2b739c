"""A service behind the gateway: one or more replicas, taken in turn."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from kit.clients import Network


class Upstream:
    """Round robin over the replicas of one service. A caller walks `attempts()` and moves to
    the next replica only when one refuses the connection (the request was never sent)."""

    def __init__(self, name: str, urls: tuple[str, ...]) -> None:
        if not urls:
            raise ValueError(f"{name}: no upstream URL")
        self.name = name
        self.urls = urls
        self._turn = itertools.cycle(range(len(urls)))

    def attempts(self) -> Iterator[str]:
        start = next(self._turn)
        for offset in range(len(self.urls)):
            yield self.urls[(start + offset) % len(self.urls)]


class Upstreams:
    """The services behind the gateway, and who may speak for a client's address."""

    def __init__(
        self, auth: Upstream, todo: Upstream, *, trusted_proxies: tuple[Network, ...] = ()
    ) -> None:
        self.auth = auth
        self.todo = todo
        self.trusted_proxies = trusted_proxies
