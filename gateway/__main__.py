"""`python -m gateway serve` and `python -m gateway render-config`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config import Settings
from kit.settings import load_or_exit


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP gateway")
    render = commands.add_parser(
        "render-config",
        help="the edge engine's (nginx's) configuration from the same GATEWAY_* variables",
    )
    render.add_argument(
        "--dir",
        type=Path,
        help="write DIR/nginx.conf and the web client to DIR/web (default: print the "
        "configuration, serving the web client from this checkout)",
    )
    render.add_argument(
        "--web-root", type=Path, help="where nginx finds the web client (default: DIR/web)"
    )
    render.add_argument(
        "--run-dir",
        type=Path,
        help="nginx's pid and temporary files, a writable directory (default: DIR/run, "
        "or /tmp/edge when printing)",
    )
    render.add_argument("--workers", default="auto", help="worker_processes (default: auto)")
    render.add_argument(
        "--user", help="the workers' user when nginx starts as root (default: nginx's own)"
    )
    arguments = parser.parse_args()
    settings = load_or_exit(Settings.from_env)
    if arguments.command == "render-config":
        _render(settings, arguments)
        return
    from kit.server import serve

    serve("gateway.app:create_app", settings.host, settings.port)


def _render(settings: Settings, arguments: argparse.Namespace) -> None:
    from gateway.edge_engine.nginx_config import EnginePaths, render
    from gateway.edge_engine.nginx_process import WEB_CLIENT, write_config
    from kit.settings import ConfigError, fail

    try:
        if arguments.dir is None:
            paths = EnginePaths(
                web_root=arguments.web_root or WEB_CLIENT,
                run_dir=arguments.run_dir or Path("/tmp/edge"),  # noqa: S108 - a default, said in --help
                workers=arguments.workers,
                user=arguments.user,
            )
            sys.stdout.write(render(settings, paths))
            return
        config = write_config(
            settings,
            arguments.dir,
            workers=arguments.workers,
            web_root=arguments.web_root,
            run_dir=arguments.run_dir,
            user=arguments.user,
        )
    except ConfigError as error:
        fail(str(error))
    print(f"wrote {config}", file=sys.stderr)


if __name__ == "__main__":
    main()
