"""`python -m auth_service clients create|list|show|rotate-secret|disable|enable|delete`: for
operators and deploy jobs. Non-interactive; `--json` prints one JSON document and nothing else
on standard output. Exit status 0 on success, 2 on bad arguments, 1 otherwise, with one line
on standard error saying why."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from auth_service.audit.log import AuditLog
from auth_service.clients.registry import DEFAULT_OVERLAP_S, ClientRefused, ClientRegistry
from auth_service.clients.secrets import SecretHasher
from auth_service.config import Settings
from auth_service.revocations.log import RevocationLog
from kit import database


def add_parser(commands: Any) -> None:
    clients = commands.add_parser("clients", help="manage OAuth clients (internal services)")
    actions = clients.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="register a client")
    create.add_argument("name", help="the client id: 3-63 of a-z, 0-9 and '-'")
    create.add_argument("--scope", required=True, help='allowed scopes, e.g. "tasks:read"')
    create.add_argument(
        "--audience", action="append", default=[], help="allowed audience (repeatable)"
    )
    how = create.add_mutually_exclusive_group(required=True)
    how.add_argument("--secret", action="store_true", help="client_secret_basic")
    how.add_argument("--jwks-file", type=Path, help="private_key_jwt: a JWKS of public keys")
    how.add_argument("--jwks-uri", help="private_key_jwt: where its public keys are served")
    create.add_argument("--json", action="store_true")
    rotate = actions.add_parser("rotate-secret", help="add a new secret; the old one overlaps")
    rotate.add_argument("name")
    rotate.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP_S, help="seconds")
    rotate.add_argument("--json", action="store_true")
    for action in ("disable", "enable", "delete"):
        actions.add_parser(action).add_argument("name")
    listing = actions.add_parser("list")
    listing.add_argument("--json", action="store_true")
    show = actions.add_parser("show")
    show.add_argument("name", nargs="?")
    show.add_argument("--json", action="store_true")


def _stop(message: str, status: int) -> NoReturn:
    print(f"clients: {message}", file=sys.stderr)
    raise SystemExit(status)


def _describe(view: dict[str, Any]) -> str:
    return (
        f"{view['client_id']}  scopes={' '.join(view['scopes'])}  "
        f"audiences={','.join(view['audiences'])}  auth={','.join(view['auth_methods'])}"
        f"{'  DISABLED' if view['disabled'] else ''}"
    )


def _print(document: Any, as_json: bool, text: str) -> None:
    print(json.dumps(document) if as_json else text)


async def _run(args: argparse.Namespace, registry: ClientRegistry) -> None:
    action, as_json = args.action, getattr(args, "json", False)
    if action == "create":
        jwks = None
        if args.jwks_file is not None:
            try:
                jwks = json.loads(args.jwks_file.read_text())
            except (OSError, ValueError) as error:
                _stop(f"cannot read {args.jwks_file}: {type(error).__name__}", 2)
        view, secret = await registry.create(
            args.name,
            scopes=args.scope.split(),
            audiences=args.audience,
            secret=args.secret,
            jwks=jwks,
            jwks_uri=args.jwks_uri,
        )
        document: dict[str, Any] = {"client_id": view.client_id}
        if secret is not None:
            document["client_secret"] = secret
        lines = [f"client_id: {view.client_id}"]
        if secret is not None:
            lines.append(f"client_secret: {secret}")
            lines.append("(the secret is shown this once; store it now)")
        _print(document, as_json, "\n".join(lines))
    elif action == "rotate-secret":
        secret = await registry.rotate_secret(args.name, overlap=args.overlap)
        _print(
            {"client_id": args.name, "client_secret": secret},
            as_json,
            f"client_id: {args.name}\nclient_secret: {secret}\n"
            f"(the previous secret keeps working for {args.overlap} s)",
        )
    elif action in ("disable", "enable"):
        await registry.set_disabled(args.name, action == "disable")
        print(f"{args.name} {action}d")
    elif action == "delete":
        await registry.delete(args.name)
        print(f"{args.name} deleted")
    elif action == "list" or (action == "show" and args.name is None):
        views = [view.as_json() for view in await registry.list()]
        _print(views, as_json, "\n".join(_describe(view) for view in views) or "(no clients)")
    else:
        shown = (await registry.get(args.name)).as_json()
        _print(shown, as_json, json.dumps(shown, indent=2))


def main(args: argparse.Namespace, settings: Settings) -> None:
    async def run() -> None:
        engine = database.create_engine(settings.database_url)
        sessions = database.session_factory(engine)
        registry = ClientRegistry(
            sessions,
            SecretHasher(settings.key_encryption_key),
            default_audience=settings.audience[0],
            first_party_client_id=settings.first_party_client_id,
            audit=AuditLog(sessions, retention=settings.audit_retention),
            revocations=RevocationLog(sessions, access_token_ttl=settings.access_token_ttl),
        )
        try:
            await _run(args, registry)
        finally:
            await engine.dispose()

    _guarded(run)


def _guarded(run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(run())
    except ClientRefused as refused:
        _stop(str(refused), 2 if refused.bad_argument else 1)
    except SystemExit:
        raise
    except Exception as error:  # the database is not there, not migrated, …
        _stop(f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}", 1)
