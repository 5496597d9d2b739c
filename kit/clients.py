"""Who is calling: the client address behind a trusted proxy (the gateway) and the user agent."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from typing import Any

from litestar import Request

MAX_USER_AGENT = 256


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 127.0.0.1` → networks; a malformed entry raises ValueError."""
    return tuple(ipaddress.ip_network(item.strip()) for item in raw.split(",") if item.strip())


@lru_cache(maxsize=1)
def trusted_proxies() -> tuple[Network, ...]:
    """Peers whose X-Forwarded-For is believed: `TRUSTED_PROXIES` (addresses or CIDR ranges),
    loopback by default — the gateway on the same host."""
    return parse_networks(os.environ.get("TRUSTED_PROXIES", "127.0.0.1,::1"))


@lru_cache(maxsize=4096)
def is_trusted(peer: str, networks: tuple[Network, ...]) -> bool:
    """Remembered per peer: parsing an address costs a few µs, and a service sees the same
    few peers (the gateway, a load balancer) on every request."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _vouched(
    request: Request[Any, Any, Any], header: str, peer: str, trusted: tuple[Network, ...] | None
) -> str | None:
    """The last entry of a forwarding header when the peer is a trusted proxy: a proxy appends
    what it saw, so the last entry is the one it vouches for. None otherwise."""
    if not is_trusted(peer, trusted_proxies() if trusted is None else trusted):
        return None
    hops = [hop.strip() for hop in request.headers.get(header, "").split(",") if hop.strip()]
    return hops[-1] if hops else None


def client_address(
    request: Request[Any, Any, Any], trusted: tuple[Network, ...] | None = None
) -> str:
    """The TCP peer, unless the peer is a trusted proxy (`trusted`, or TRUSTED_PROXIES): then
    the address that proxy forwarded."""
    peer = request.client.host if request.client else ""
    vouched = _vouched(request, "x-forwarded-for", peer, trusted)
    return address if vouched and (address := _valid_ip(vouched)) else peer


def client_scheme(
    request: Request[Any, Any, Any], trusted: tuple[Network, ...] | None = None
) -> str:
    """The scheme of this hop, unless the peer is a trusted proxy that said `http` or `https`
    in X-Forwarded-Proto (its last entry, as for the address): then that one, so a gateway
    behind a TLS-terminating load balancer passes on the client's `https`."""
    peer = request.client.host if request.client else ""
    vouched = (_vouched(request, "x-forwarded-proto", peer, trusted) or "").lower()
    return vouched if vouched in ("http", "https") else str(request.scope.get("scheme", "http"))


def client_info(request: Request[Any, Any, Any]) -> tuple[str, str]:
    """(user agent, client address) as a session records them."""
    user_agent = request.headers.get("user-agent", "")[:MAX_USER_AGENT]
    return user_agent, client_address(request)
