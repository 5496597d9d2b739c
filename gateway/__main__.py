"""`python -m gateway serve`."""

from __future__ import annotations

import argparse

from gateway.config import Settings
from kit.settings import load_or_exit


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP gateway")
    parser.parse_args()
    settings = load_or_exit(Settings.from_env)
    from kit.server import serve

    serve("gateway.app:create_app", settings.host, settings.port)


if __name__ == "__main__":
    main()
