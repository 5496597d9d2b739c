"""`python -m todo_service serve | migrate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit import database
from kit.settings import load_or_exit
from todo_service.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m todo_service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service")
    commands.add_parser("migrate", help="apply database migrations")
    args = parser.parse_args()
    settings = load_or_exit(Settings.from_env)
    if args.command == "migrate":
        database.upgrade(settings.database_url, MIGRATIONS)
    else:
        from kit.server import serve

        serve("todo_service.app:create_app", settings.host, settings.port)


if __name__ == "__main__":
    main()
