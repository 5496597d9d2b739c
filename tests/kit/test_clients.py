"""Who is calling: forwarding headers are believed only from a trusted proxy, and only the
entry that proxy vouches for (the last), when it is well-formed."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request

from kit.clients import client_address, client_scheme, parse_networks

PROXIES = parse_networks("10.0.0.0/8")


def request_from(
    peer: str, headers: dict[str, str], scheme: str = "http"
) -> Request[Any, Any, Any]:
    scope: Any = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "scheme": scheme,
        "client": (peer, 40000),
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
        "query_string": b"",
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.1.2.3", "198.51.100.7", "198.51.100.7"),  # a trusted proxy's word
        ("10.1.2.3", "203.0.113.9, 198.51.100.7", "198.51.100.7"),  # its own entry is the last
        ("10.1.2.3", "198.51.100.7, ", "198.51.100.7"),  # empty entries are not entries
        ("10.1.2.3", "not-an-address", "10.1.2.3"),  # garbage: the peer
        ("10.1.2.3", "", "10.1.2.3"),
        ("192.0.2.1", "198.51.100.7", "192.0.2.1"),  # an untrusted peer is not believed
    ],
)
def test_client_address(peer: str, forwarded: str, expected: str) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client_address(request_from(peer, headers), PROXIES) == expected


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.1.2.3", "https", "https"),
        ("10.1.2.3", "HTTP, HTTPS", "https"),  # the last entry, case-folded
        ("10.1.2.3", "https, http", "http"),
        ("10.1.2.3", "javascript", "http"),  # not a scheme we pass on: this hop's
        ("10.1.2.3", " , ", "http"),
        ("192.0.2.1", "https", "http"),  # an untrusted peer is not believed
    ],
)
def test_client_scheme(peer: str, forwarded: str, expected: str) -> None:
    assert client_scheme(request_from(peer, {"X-Forwarded-Proto": forwarded}), PROXIES) == expected
