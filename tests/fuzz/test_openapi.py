"""Schemathesis against each service's published OpenAPI document over real HTTP, with all of
its checks: the in-process equivalent of `schemathesis run --checks all` (schemathesis's own
engine and phases — examples, coverage, fuzzing, stateful — configured as in a
`schemathesis.toml`). Whatever the generated input: no 500, every status and content type is
documented, responses and their headers match their schemas, schema-valid requests are
accepted and schema-violating ones refused, a protected route refuses requests without its
credentials, and what was created can be read and, once deleted, cannot."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.schemas import BaseSchema

from tests.infra import ServiceProcess, start_service

# Only the rules no JSON Schema can state make a schema-valid request fail, with the
# documented 422: an address in a special-use domain (`x@none.test`) and a guessable password
# (`weak_password`). Everywhere else a schema-valid request must be accepted.
# Rules no JSON Schema says: an address's domain, a guessable password, a role's or client's
# name (items of a list of strings also lose their pattern in Litestar's document).
SEMANTIC_422 = [
    "POST /auth/register",
    "POST /auth/login",
    "POST /auth/password",
    "POST /admin/clients",
    "PATCH /admin/clients/{client_id}",
    "PUT /admin/users/{user_id}/roles",
]
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
NOT_YET: list[str] = []  # operations left out of the run; none now


def config_for(token: str, **path_parameters: str) -> SchemathesisConfig:
    """As a `schemathesis.toml` would say it."""
    parameters = "".join(f'"path.{name}" = "{value}"\n' for name, value in path_parameters.items())
    semantic = "".join(
        f"""
[[operations]]
include-name = "{name}"
checks.positive_data_acceptance.expected-statuses = {[*ACCEPTED, "422"]!r}
"""
        for name in SEMANTIC_422
    )
    return SchemathesisConfig.from_str(
        f"""
headers = {{ Authorization = "Bearer {token}" }}
cache.enabled = false
checks.enabled = true
generation.max-examples = 25
generation.deterministic = true
[parameters]
{parameters}
{semantic}
"""
    )


def signed_in(auth: ServiceProcess) -> dict[str, Any]:
    email = f"fuzz-{secrets.token_hex(4)}@example.com"
    response = httpx.post(
        f"{auth.url}/auth/register",
        json={"email": email, "password": "correct horse battery staple"},
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def todo_server(
    auth_server: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    workdir: Path = tmp_path_factory.mktemp("fuzz-todo")
    todo = start_service(
        "todo_service", workdir, {"TODO_JWKS_URL": f"{auth_server.url}/.well-known/jwks.json"}
    )
    yield todo
    todo.stop()


@pytest.fixture(scope="module")
def auth_user(auth_server: ServiceProcess) -> dict[str, Any]:
    return signed_in(auth_server)


def run_all_checks(url: str, config: SchemathesisConfig) -> tuple[set[str], int, list[str]]:
    """Every phase and check of schemathesis against the document at `url`: the operations
    tested, the number of checks run, and the failures (and engine errors) as text."""
    schema: BaseSchema = schemathesis.openapi.from_url(url, config=config)
    for path in NOT_YET:
        schema = schema.exclude(path=path)
    operations: set[str] = set()
    checks = 0
    failures: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            operations.add(event.recorder.label)
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    checks += 1
                    if node.status == Status.FAILURE and node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.append(
                            f"{failure.code} {failure.title} — {failure.operation}\n"
                            f"{failure.message}\n{node.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"engine error: {event!r}")
    return operations, checks, sorted(set(failures))


def test_auth_api(auth_server: ServiceProcess, auth_user: dict[str, Any]) -> None:
    operations, checks, failures = run_all_checks(
        f"{auth_server.url}/schema/openapi.json", config_for(auth_user["access_token"])
    )
    assert not failures, "\n\n".join(failures)
    assert {"POST /auth/login", "GET /auth/sessions", "DELETE /auth/sessions/{session_id}"} <= (
        operations
    )
    assert checks >= 20 * len(operations)  # the cases really went over the wire


def test_todo_api(todo_server: ServiceProcess, auth_user: dict[str, Any]) -> None:
    # The caller's own list, so that the handlers behind the owner check are reached (another
    # user's list is 403, tested in tests/todo).
    operations, checks, failures = run_all_checks(
        f"{todo_server.url}/schema/openapi.json",
        config_for(auth_user["access_token"], user_id=auth_user["user"]["id"]),
    )
    assert not failures, "\n\n".join(failures)
    assert {
        f"{method} /api/{{user_id}}/tasks{path}"
        for method, path in [
            ("GET", ""),
            ("POST", ""),
            ("GET", "/{task_id}"),
            ("PUT", "/{task_id}"),
            ("DELETE", "/{task_id}"),
            ("PATCH", "/{task_id}/complete"),
        ]
    } <= operations, operations
    # Links inferred from the document chained create → read → delete → read: the phase where
    # use_after_free and ensure_resource_availability have something to judge.
    assert "Stateful tests" in operations
    assert checks >= 20 * len(operations)
