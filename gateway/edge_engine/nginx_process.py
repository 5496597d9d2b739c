"""Writing the rendered configuration beside a copy of the web client, and the command that runs
nginx on it in the foreground (for `make run-edge`, the tests and the bench)."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from gateway.config import Settings
from gateway.edge_engine.nginx_config import EnginePaths, render

WEB_CLIENT = Path(__file__).resolve().parent.parent / "web"
CONFIG_FILE = "nginx.conf"
INSTALL_HINT = (
    "nginx is not installed: `sudo apt-get install nginx` (Debian/Ubuntu), "
    "`brew install nginx` (macOS), or run the edge from the stock image (compose.yaml)"
)


def nginx_binary() -> str | None:
    """EDGE_NGINX when set (None unless it is an executable), else nginx on PATH or where
    Debian puts it (/usr/sbin is not on every user's PATH)."""
    chosen = os.environ.get("EDGE_NGINX")
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def write_config(
    settings: Settings,
    directory: Path,
    *,
    workers: str = "auto",
    web_root: Path | None = None,
    run_dir: Path | None = None,
    user: str | None = None,
) -> Path:
    """`directory`/nginx.conf and `directory`/web (the web client); nginx's pid and temporary
    files under `directory`/run. `web_root` and `run_dir` say where nginx will see those when
    it runs elsewhere (a container mounting `directory`). Returns the configuration's path."""
    directory.mkdir(parents=True, exist_ok=True)
    web = directory / "web"
    if web.exists():
        shutil.rmtree(web)
    shutil.copytree(WEB_CLIENT, web)
    if run_dir is None:
        run_dir = directory / "run"
        run_dir.mkdir(exist_ok=True)
    paths = EnginePaths(web_root=web_root or web, run_dir=run_dir, workers=workers, user=user)
    config = directory / CONFIG_FILE
    config.write_text(render(settings, paths))
    return config


def local_user() -> str | None:
    """Who started a local nginx, when that is root: its workers must read files only root
    may (a private temporary directory), not switch to `nobody`."""
    return pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None


def nginx_command(binary: str, config: Path) -> list[str]:
    """In the foreground, errors on stderr from the first line (before the file is read)."""
    return [
        binary,
        "-e",
        "stderr",
        "-p",
        str(config.parent),
        "-c",
        str(config),
        "-g",
        "daemon off;",
    ]
