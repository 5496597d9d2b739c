"""`python -m gateway render-config`: what it makes of the GATEWAY_* variables, what it refuses,
and that nginx accepts what it writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.edge_engine.nginx_config import EnginePaths, RateLimit, render
from gateway.edge_engine.nginx_process import INSTALL_HINT, nginx_binary
from kit.clients import parse_networks
from kit.settings import ConfigError
from tests.infra import run_cli, unavailable

PATHS = EnginePaths(web_root=Path("/srv/web"), run_dir=Path("/tmp/edge-run"))


@pytest.mark.parametrize(
    ("setting", "per_minute", "burst", "retry_after", "rounded"),
    [
        ("30/minute", 30, 29, 2, False),
        ("3/minute", 3, 2, 20, False),
        ("10/second", 600, 9, 1, False),
        ("120/hour", 2, 119, 30, False),
        ("5/hour", 1, 4, 60, True),
    ],
)
def test_rate_limits_become_leaky_buckets(
    setting: str, per_minute: int, burst: int, retry_after: int, rounded: bool
) -> None:
    assert RateLimit.from_setting(setting) == RateLimit(per_minute, burst, retry_after, rounded)
    text = render(Settings(auth_rate_limit=setting), PATHS)
    assert f"rate={per_minute}r/m" in text and f"burst={burst} nodelay" in text
    assert ("the rate was raised" in text) == rounded


def test_one_source_of_truth_for_routes_and_settings() -> None:
    text = render(
        Settings(
            auth_urls=("http://10.0.0.1:8001", "http://[::1]:8001"),
            todo_urls=("https://todo.internal",),
            cors_origins=("https://app.example.com",),
            trusted_proxies=parse_networks("10.0.0.0/8"),
            connect_timeout=1.5,
            port=9000,
        ),
        PATHS,
    )
    assert "server 10.0.0.1:8001;" in text and "server [::1]:8001;" in text
    assert "server todo.internal:443;" in text and "proxy_pass https://todo/api/;" in text
    assert '"https://app.example.com" $http_origin;' in text
    assert "set_real_ip_from 10.0.0.0/8;" in text
    assert "proxy_connect_timeout 1500ms;" in text
    assert "listen 127.0.0.1:9000;" in text
    assert "root /srv/web;" in text and "pid /tmp/edge-run/nginx.pid;" in text


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_AUTH_URL", "http://auth:8001/prefix"),
        ("GATEWAY_AUTH_URL", "http://auth:8001?x=1"),
        ("GATEWAY_TODO_URL", "http://todo:8002,https://todo2:8002"),
        ("GATEWAY_CORS_ORIGINS", 'https://a.example.com" 1; } include /etc/passwd; #'),
        ("GATEWAY_CORS_ORIGINS", "https://a.example.com/path"),
        ("GATEWAY_CORS_ORIGINS", "https://$host"),
        ("GATEWAY_CORS_ORIGINS", "https://a.example.com\x01"),
        ("GATEWAY_CORS_ORIGINS", "https://a.example.com\nb"),
        ("GATEWAY_AUTH_RATE_LIMIT", "lots"),
        ("GATEWAY_PORT", "99999"),
    ],
)
def test_bad_values_stop_it_with_one_line(tmp_path: Path, variable: str, value: str) -> None:
    done = run_cli(
        "gateway",
        "render-config",
        env={variable: value},
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout[-300:]
    assert variable in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    "origin",
    # What no environment can carry (NUL, a lone surrogate) but a Settings object could.
    ["https://a.example.com;", "https://a.example.com\x00", "https://\ud800.example.com"],
)
def test_render_refuses_what_it_cannot_write(origin: str) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_CORS_ORIGINS"):
        render(Settings(cors_origins=(origin,)), PATHS)


def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    binary = nginx_binary()
    if binary is None:
        unavailable(INSTALL_HINT)
        return
    settings = {
        "GATEWAY_AUTH_URL": "http://127.0.0.1:8001,http://[::1]:8001",
        "GATEWAY_TODO_URL": "http://127.0.0.1:8002",
        "GATEWAY_CORS_ORIGINS": "https://app.example.com,http://localhost:5173",
        "GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8,::1",
        "GATEWAY_AUTH_RATE_LIMIT": "5/hour",
        "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/1",
    }
    printed = run_cli(
        "gateway", "render-config", "--run-dir", str(tmp_path), env=settings, cwd=tmp_path
    )
    assert printed.returncode == 0, printed.stderr
    assert "each nginx replica counts on its own" in printed.stdout  # said, not silently ignored
    config = tmp_path / "nginx.conf"
    config.write_text(printed.stdout)
    checked = subprocess.run(
        [binary, "-e", "stderr", "-t", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
