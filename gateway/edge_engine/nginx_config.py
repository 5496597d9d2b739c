"""nginx's configuration, rendered from the gateway's Settings (the same GATEWAY_* variables).

Everything the contract asks of the gateway, as nginx does it:

- routes: `/auth/`, `/oauth/`, `/.well-known/` to auth, `/api/` and the protected-resource
  metadata to todo, `/internal/` never (404), the web client's files for the rest;
- the path an upstream sees is the one nginx routed on (decoded, dot segments resolved, slashes
  merged, re-encoded), because `proxy_pass` names a URI; a dot segment in the request is refused
  (400 `malformed_request`) as the Python gateway refuses it;
- every answer, errors included, carries X-Request-ID (the client's when well-formed, nginx's
  `$request_id` otherwise; passed upstream) and the security headers, replacing an upstream's;
- CORS for the listed origins only; X-Forwarded-For/-Proto believed only from trusted proxies
  (the realip module takes the last entry, as kit.clients does), then replaced, never appended;
- round robin over replicas, the next one tried when a connection fails (a request that was
  sent is not repeated unless idempotent); 503 when no replica took the connection, 502 when one
  failed mid-answer, 504 when one was too slow; a body over 64 KiB is 413;
- the per-address limit on the four credential routes (`limit_req`, 429 with Retry-After).

Errors nginx itself produces are problem+json bodies with the contract's `code`.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from limits import parse

from gateway.config import Settings
from gateway.edge.cors import (
    CORS_ALLOWED_HEADERS,
    CORS_EXPOSED_HEADERS,
    CORS_MAX_AGE_S,
    CORS_METHODS,
)
from gateway.edge.headers import security_headers
from gateway.edge.ratelimit import LIMITED_PATHS
from gateway.proxy.controller import PROTECTED_RESOURCE_METADATA
from gateway.proxy.forwarder import UNAVAILABLE_RETRY_AFTER_S
from kit.app import MAX_BODY_BYTES
from kit.logs import _WELL_FORMED_ID as WELL_FORMED_REQUEST_ID
from kit.server import KEEP_ALIVE_S
from kit.settings import ConfigError

# Idle connections to a service are closed before the service would close them (as the Python
# gateway's UPSTREAM_IDLE_S): a request sent as the service closes one would be lost.
UPSTREAM_IDLE_S = KEEP_ALIVE_S - 1
UPSTREAM_IDLE_CONNECTIONS = 64
RATE_LIMIT_ZONE = "edge_auth_routes"
# nginx's own errors, each answered by a problem+json location (494: request headers too large).
ERROR_PAGES = (
    *(
        f"error_page {status} /__edge/problem-{status};"
        for status in (400, 404, 405, 413, 414, 429)
    ),
    "error_page 494 =400 /__edge/problem-400;",
)
# A dot segment, plain or percent-encoded, in the path as sent: nginx would resolve it, and the
# Python gateway refuses it; so does the edge.
DOT_SEGMENT_REFUSAL = (
    'if ($request_uri ~* "^[^?]*(/|%2f)(\\.|%2e){1,2}(/|%2f|\\?|$)") { return 400; }'
)
INTERNAL_ERROR_PAGE = "error_page 500 /__edge/problem-500;"

# The web client's files, and the JSON nginx answers itself: nginx's own mime.types is not
# assumed to be there, so the configuration stands alone.
CONTENT_TYPES = {
    "text/html": "html",
    "text/css": "css",
    "application/javascript": "js mjs",
    "application/json": "json",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/x-icon": "ico",
    "font/woff2": "woff2",
    "application/manifest+json": "webmanifest",
    "text/plain": "txt",
}


PLAIN_HOST = re.compile(r"^[A-Za-z0-9.:_-]+$")
PLAIN_ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class EnginePaths:
    """Where the running engine finds the web client, and keeps its pid and temporary files
    (a writable directory: with a read-only root, a tmpfs)."""

    web_root: Path
    run_dir: Path
    workers: str = "auto"
    # The workers' user when the master runs as root (nginx's default then is `nobody`).
    user: str | None = None


@dataclass(frozen=True)
class RateLimit:
    """GATEWAY_AUTH_RATE_LIMIT as nginx's leaky bucket: the same sustained rate, and the whole
    amount available at once. nginx counts in whole requests per minute, so a rate below one a
    minute is raised to one a minute (said in the rendered file)."""

    per_minute: int
    burst: int
    retry_after_s: int
    rounded: bool

    @classmethod
    def from_setting(cls, setting: str) -> RateLimit:
        item = parse(setting)
        exact = item.amount * 60 / item.get_expiry()
        per_minute = max(1, round(exact))
        return cls(
            per_minute=per_minute,
            burst=max(0, item.amount - 1),
            # One more request is let through this long after the bucket is full.
            retry_after_s=max(1, math.ceil(60 / per_minute)),
            rounded=not math.isclose(per_minute, exact),
        )


def render(settings: Settings, paths: EnginePaths) -> str:
    auth_scheme, auth_servers = _servers("GATEWAY_AUTH_URL", settings.auth_urls)
    todo_scheme, todo_servers = _servers("GATEWAY_TODO_URL", settings.todo_urls)
    limit = RateLimit.from_setting(settings.auth_rate_limit)
    common = _common_headers(settings)
    lines = [
        "# Rendered by `python -m gateway render-config` from the GATEWAY_* variables; edit "
        "those, not this file.",
        *([f"user {paths.user};"] if paths.user else []),
        f"worker_processes {paths.workers};",
        f"pid {paths.run_dir / 'nginx.pid'};",
        "error_log stderr warn;",
        "events { worker_connections 4096; }",
        "http {",
        *_indent(_http_block(settings, paths, limit)),
        *_indent(_upstream("auth", auth_servers)),
        *_indent(_upstream("todo", todo_servers)),
        "    server {",
        *_indent(_server_block(settings, paths, limit, common), 2),
        *_indent(_proxied("auth", auth_scheme, ["/auth/", "/oauth/", "/.well-known/"], common), 2),
        *_indent(_proxied("todo", todo_scheme, ["/api/"], common), 2),
        *_indent(
            _location(
                f"= {PROTECTED_RESOURCE_METADATA}",
                [f"proxy_pass {todo_scheme}://todo;", *_failures("todo")],
            ),
            2,
        ),
        *_indent(_own_answers(settings, todo_scheme, auth_scheme, limit, common), 2),
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


# --- pieces -------------------------------------------------------------------------------------


def _http_block(settings: Settings, paths: EnginePaths, limit: RateLimit) -> list[str]:
    run = paths.run_dir
    trusted = [str(network) for network in settings.trusted_proxies]
    lines = [
        "types {",
        *(f"    {mime} {extensions};" for mime, extensions in CONTENT_TYPES.items()),
        "}",
        "default_type application/octet-stream;",
        "server_tokens off;",
        "sendfile on;",
        "tcp_nodelay on;",
        f"keepalive_timeout {KEEP_ALIVE_S}s;",
        *(
            f"{kind}_temp_path {run / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        # One JSON line a request, with the request id every service logs too.
        'log_format edge escape=json \'{"service":"edge","time":"$time_iso8601",'
        '"request_id":"$edge_request_id","method":"$request_method","path":"$uri",'
        '"status":$status,"ms":$request_time,"upstream":"$upstream_addr"}\';',
        "access_log /dev/stdout edge;",
        f"client_max_body_size {MAX_BODY_BYTES};",
        f"client_body_buffer_size {MAX_BODY_BYTES};",
        "",
        "# X-Request-ID: the client's when well-formed (kit.logs' pattern), a new one otherwise.",
        "map $http_x_request_id $edge_request_id {",
        f'    "~{WELL_FORMED_REQUEST_ID.pattern}" $http_x_request_id;',
        "    default $request_id;",
        "}",
        "",
        "# Who the client is: the TCP peer, or the last X-Forwarded-For entry a trusted proxy",
        "# added (GATEWAY_TRUSTED_PROXIES).",
        *(f"set_real_ip_from {network};" for network in trusted),
        *(["real_ip_header X-Forwarded-For;", "real_ip_recursive off;"] if trusted else []),
        "geo $realip_remote_addr $edge_from_trusted_proxy {",
        "    default 0;",
        *(f"    {network} 1;" for network in trusted),
        "}",
        "# The scheme: a trusted proxy's last X-Forwarded-Proto entry when it is http or https.",
        'map "$edge_from_trusted_proxy:$http_x_forwarded_proto" $edge_scheme {',
        '    "~*^1:(.*,)?\\s*https\\s*$" https;',
        '    "~*^1:(.*,)?\\s*http\\s*$" http;',
        "    default $scheme;",
        "}",
        "",
        f"# GATEWAY_AUTH_RATE_LIMIT={settings.auth_rate_limit}: POSTs to the credential routes, "
        "per client address and route.",
        *(
            [
                "# nginx counts whole requests a minute: the rate was raised to "
                f"{limit.per_minute} a minute."
            ]
            if limit.rounded
            else []
        ),
        *(
            [
                "# GATEWAY_REDIS_URL is not used here: each nginx replica counts on its own (the",
                "# auth service's per-account limit on failed logins is shared by all).",
            ]
            if settings.redis_url
            else []
        ),
        'map "$request_method:$uri" $edge_rate_key {',
        *(
            f'    "POST:{path}{slash}" "$binary_remote_addr{path}";'
            for path in sorted(LIMITED_PATHS)
            for slash in ("", "/")
        ),
        '    default "";',
        "}",
        f"limit_req_zone $edge_rate_key zone={RATE_LIMIT_ZONE}:10m rate={limit.per_minute}r/m;",
        "limit_req_status 429;",
        "limit_req_log_level warn;",
        "",
        "# A failed upstream answer: 503 when no replica took the connection, 502 otherwise.",
        "map $upstream_connect_time $edge_never_connected {",
        '    "~^[-,: ]*$" 1;',
        "    default 0;",
        "}",
        "map $edge_never_connected $edge_unavailable_retry_after {",
        f'    1 "{UNAVAILABLE_RETRY_AFTER_S}";',
        '    default "";',
        "}",
        *_cors_maps(settings),
    ]
    return lines


def _cors_maps(settings: Settings) -> list[str]:
    if not settings.cors_origins:
        return []
    methods = ", ".join(CORS_METHODS)
    return [
        "",
        "# CORS: GATEWAY_CORS_ORIGINS only.",
        "map $http_origin $edge_cors_origin {",
        *(f'    "{origin}" $http_origin;' for origin in _checked_origins(settings.cors_origins)),
        '    default "";',
        "}",
        "map $edge_cors_origin $edge_cors_credentials {",
        '    "" "";',
        "    default true;",
        "}",
        'map "$request_method|$edge_cors_origin|$http_access_control_request_method"'
        " $edge_cors_preflight {",
        '    "~^OPTIONS\\|[^|]+\\|.+$" 1;',
        "    default 0;",
        "}",
        "map $edge_cors_preflight $edge_cors_allow_methods {",
        f'    1 "{methods}";',
        '    default "";',
        "}",
    ]


def _upstream(name: str, servers: list[str]) -> list[str]:
    return [
        f"upstream {name} {{",
        *(f"    server {server};" for server in servers),
        f"    keepalive {UPSTREAM_IDLE_CONNECTIONS};",
        f"    keepalive_timeout {UPSTREAM_IDLE_S}s;",
        "}",
    ]


def _server_block(
    settings: Settings, paths: EnginePaths, limit: RateLimit, common: list[str]
) -> list[str]:
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    return [
        f"listen {host}:{settings.port};",
        *common,
        f"limit_req zone={RATE_LIMIT_ZONE} burst={limit.burst} nodelay;",
        "",
        "# Upstreams see the path routed on; these headers are the edge's to set.",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header X-Request-ID $edge_request_id;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $edge_scheme;",
        "proxy_set_header X-Forwarded-Host $http_host;",
        *(
            f'proxy_set_header {name} "";'
            for name in (
                "Forwarded",
                "X-Forwarded-Port",
                "X-Forwarded-Prefix",
                "X-Real-IP",
                "Keep-Alive",
                "TE",
                "Trailer",
                "Upgrade",
                "Proxy-Authorization",
                "Proxy-Connection",
            )
        ),
        *(f"proxy_hide_header {name};" for name in _replaced_headers(settings)),
        f"proxy_connect_timeout {_ms(settings.connect_timeout)};",
        f"proxy_send_timeout {_ms(settings.read_timeout)};",
        f"proxy_read_timeout {_ms(settings.read_timeout)};",
        # Only a failed connection moves a request on (error: refused; timeout: no answer in
        # time, which nginx repeats elsewhere only for a method that may be repeated).
        "proxy_next_upstream error timeout;",
        # Large answers pass through memory buffers, never temporary files (read-only root).
        "proxy_max_temp_file_size 0;",
        "proxy_buffer_size 16k;",
        "proxy_buffers 16 16k;",
        "",
        *(
            ["if ($edge_cors_preflight) { rewrite ^ /__edge/cors-preflight last; }"]
            if settings.cors_origins
            else []
        ),
        "",
        *ERROR_PAGES,
        INTERNAL_ERROR_PAGE,
        "",
        *_location(
            "/",
            [f"root {paths.web_root};", "index index.html;", "try_files $uri $uri/ =404;"],
        ),
        *_location("^~ /internal/", ["return 404;"]),
    ]


def _proxied(name: str, scheme: str, prefixes: list[str], common: list[str]) -> list[str]:
    lines: list[str] = []
    for prefix in prefixes:
        # With a URI in proxy_pass, nginx sends the normalised path it matched, re-encoded.
        lines += _location(prefix, [f"proxy_pass {scheme}://{name}{prefix};", *_failures(name)])
    lines += _problem_location(
        f"/__edge/{name}-failed",
        common,
        [
            "if ($edge_never_connected) {",
            "    " + _answer(503, "upstream_unavailable", f"the {name} service is unavailable"),
            "}",
            _answer(502, "upstream_unavailable", f"the {name} service failed"),
        ],
        extra_headers=["add_header Retry-After $edge_unavailable_retry_after always;"],
    )
    lines += _problem_location(
        f"/__edge/{name}-timeout",
        common,
        [_answer(504, "upstream_timeout", f"the {name} service is too slow")],
    )
    return lines


def _failures(name: str, *, internal_error: str = INTERNAL_ERROR_PAGE) -> list[str]:
    """A location's error pages replace the server's: both are listed."""
    return [
        *ERROR_PAGES,
        internal_error,
        f"error_page 502 503 = /__edge/{name}-failed;",
        f"error_page 504 = /__edge/{name}-timeout;",
    ]


def _own_answers(
    settings: Settings, todo_scheme: str, auth_scheme: str, limit: RateLimit, common: list[str]
) -> list[str]:
    lines = [
        *_location(
            "= /health/live",
            ["default_type application/json;", 'return 200 \'{"status":"ok","service":"edge"}\';'],
        ),
        # Ready when a todo replica says so (a subrequest) and then an auth replica does.
        *_location(
            "= /health/ready",
            [
                "auth_request /__edge/todo-ready;",
                f"proxy_pass {auth_scheme}://auth/health/ready;",
                "proxy_pass_request_body off;",
                'proxy_set_header Content-Length "";',
                *_failures("auth", internal_error="error_page 500 = /__edge/todo-not-ready;"),
            ],
        ),
        *_location(
            "= /__edge/todo-ready",
            [
                "internal;",
                f"proxy_pass {todo_scheme}://todo/health/ready;",
                "proxy_pass_request_body off;",
                'proxy_set_header Content-Length "";',
            ],
        ),
        *_problem_location(
            "/__edge/todo-not-ready",
            common,
            [_answer(503, "upstream_unavailable", "no todo replica is ready")],
        ),
        # The Prometheus text format, from nginx's connection counters (stub_status).
        *_location(
            "= /metrics",
            [
                'default_type "text/plain; version=0.0.4";',
                "return 200 "
                + _quoted(
                    "".join(
                        f"# TYPE nginx_connections_{state} gauge\n"
                        f"nginx_connections_{state} $connections_{state}\n"
                        for state in ("active", "reading", "writing", "waiting")
                    )
                )
                + ";",
            ],
        ),
    ]
    if settings.cors_origins:
        lines += _problem_location(
            "/__edge/cors-preflight",
            common,
            ["return 204;"],
            extra_headers=[
                "add_header Access-Control-Allow-Methods $edge_cors_allow_methods always;",
                'add_header Access-Control-Allow-Headers "'
                + ", ".join(CORS_ALLOWED_HEADERS)
                + '" always;',
                f"add_header Access-Control-Max-Age {CORS_MAX_AGE_S} always;",
            ],
        )
    problems = {
        400: ("malformed_request", "the request is malformed"),
        404: ("not_found", "not found"),
        405: ("method_not_allowed", "method not allowed"),
        413: ("payload_too_large", "the request body is too large"),
        414: ("malformed_request", "the request target is too long"),
        500: ("internal_error", "the edge failed"),
    }
    for status, (code, detail) in problems.items():
        lines += _problem_location(
            f"/__edge/problem-{status}",
            common,
            [_answer(status, code, detail)],
        )
    lines += _problem_location(
        "/__edge/problem-429",
        common,
        [_answer(429, "rate_limited", f"too many requests; retry in {limit.retry_after_s} s")],
        extra_headers=[f"add_header Retry-After {limit.retry_after_s} always;"],
    )
    return lines


def _problem_location(
    path: str, common: list[str], body: list[str], *, extra_headers: list[str] | None = None
) -> list[str]:
    """An internal location answering itself (error pages go to a URI, not a named location:
    a request whose line did not parse has no URI, and nginx cannot send it to a name).
    add_header in a location replaces the server's, so the common headers are repeated."""
    return _location(
        f"= {path}",
        [
            "internal;",
            "default_type application/problem+json;",
            *common,
            *(extra_headers or []),
            *body,
        ],
    )


def _location(match: str, body: list[str]) -> list[str]:
    """A location a client reaches; a dot segment in its request is refused first. (Not at the
    server level: an error page is an internal redirect, which runs the server's rewrites again
    on the same $request_uri.)"""
    if "internal;" not in body:
        body = [DOT_SEGMENT_REFUSAL, *body]
    return [f"location {match} {{", *(f"    {line}" for line in body), "}"]


def _common_headers(settings: Settings) -> list[str]:
    headers = [
        f"add_header {_header_name(name)} {_double_quoted(value)} always;"
        for name, value in security_headers(settings.hsts).items()
    ]
    headers.append("add_header X-Request-ID $edge_request_id always;")
    if settings.cors_origins:
        headers += [
            "add_header Access-Control-Allow-Origin $edge_cors_origin always;",
            "add_header Access-Control-Allow-Credentials $edge_cors_credentials always;",
            'add_header Access-Control-Expose-Headers "'
            + ", ".join(CORS_EXPOSED_HEADERS)
            + '" always;',
            "add_header Vary Origin always;",
        ]
    return headers


def _replaced_headers(settings: Settings) -> list[str]:
    """Upstream headers the edge sets itself, hidden so that only the edge's go out."""
    names = [_header_name(name) for name in security_headers(settings.hsts)]
    names.append("X-Request-ID")
    if settings.cors_origins:
        names += [
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Credentials",
            "Access-Control-Expose-Headers",
        ]
    return names


# --- values -------------------------------------------------------------------------------------


def _checked_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    """Origins go into the configuration's text: anything but a plain origin is refused
    rather than escaped (the Python gateway compares them as strings and needs no check)."""
    for origin in origins:
        if not PLAIN_ORIGIN.match(origin):
            raise ConfigError("GATEWAY_CORS_ORIGINS", f"not a plain origin: {origin!r}")
    return origins


def _servers(variable: str, urls: tuple[str, ...]) -> tuple[str, list[str]]:
    """`http://host:port` URLs → (scheme, ["host:port", …]); one scheme per service, no path
    (nginx balances over servers of one upstream block, and sends one URI to all)."""
    schemes, servers = set(), []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(variable, f"the edge engine needs bare origins, not {url!r}")
        if parts.hostname is None or not PLAIN_HOST.match(parts.hostname):
            raise ConfigError(variable, f"not a plain host name or address in {url!r}")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        schemes.add(parts.scheme)
        servers.append(f"{host}:{port}")
    if len(schemes) != 1:
        raise ConfigError(variable, "every replica must use the same scheme for the edge engine")
    return schemes.pop(), servers


def _answer(status: int, code: str, detail: str) -> str:
    """`return` with the contract's problem body."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    return f"return {status} {_quoted(json.dumps(body, separators=(',', ':')))};"


def _quoted(text: str) -> str:
    """An nginx single-quoted string. `$` would start a variable there: text holding one
    is rendered only where variables are meant (the metrics)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _double_quoted(text: str) -> str:
    if "$" in text:
        raise ConfigError("GATEWAY_*", f"a header value with '$' cannot be rendered: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _header_name(lower: str) -> str:
    return "-".join(part.capitalize() for part in lower.split("-"))


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _indent(lines: list[str], levels: int = 1) -> list[str]:
    pad = "    " * levels
    return [pad + line if line else line for line in lines]
