"""RFC 9728 protected-resource metadata: the document a resource server publishes at
`/.well-known/oauth-protected-resource`, and the URL its 401 challenge names.

    document = resource_metadata("https://api.example.com",
                                 authorization_servers=["https://auth.example.com"],
                                 scopes_supported=["tasks:read", "tasks:write"])
    url = resource_metadata_url("https://api.example.com")
    # → "https://api.example.com/.well-known/oauth-protected-resource"
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def _checked_resource(resource: str) -> str:
    parts = urlsplit(resource)
    # RFC 9728 §1.2: an https URL without a query or fragment (http allowed for loopback and
    # tests, as our issuer allows it).
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"resource must be an absolute http(s) URL: {resource!r}")
    if parts.query or parts.fragment:
        raise ValueError("resource must have no query or fragment")
    return resource


def resource_metadata(
    resource: str,
    *,
    authorization_servers: Iterable[str],
    scopes_supported: Iterable[str] = (),
    bearer_methods_supported: Iterable[str] = ("header",),
    **extra: Any,
) -> dict[str, Any]:
    """The metadata document (RFC 9728 §2). `bearer_methods_supported` is `["header"]`: the
    adapters read the Authorization header only. `extra` adds other members
    (`resource_name`, `resource_documentation`, …)."""
    return {
        "resource": _checked_resource(resource),
        "authorization_servers": list(authorization_servers),
        "scopes_supported": list(scopes_supported),
        "bearer_methods_supported": list(bearer_methods_supported),
        **extra,
    }


def resource_metadata_url(resource: str) -> str:
    """Where the document is published (RFC 9728 §3.1): the well-known path inserted between
    the host and any path of the resource identifier."""
    parts = urlsplit(_checked_resource(resource))
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + path, "", ""))
