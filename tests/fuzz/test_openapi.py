"""Schemathesis against each service's published OpenAPI document, over real HTTP: whatever
the generated input, no 500, and documented responses match their schema."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.infra import ServiceProcess, start_service

CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
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
def auth_schema(auth_server: ServiceProcess) -> Any:
    return schemathesis.openapi.from_url(f"{auth_server.url}/schema/openapi.json")


@pytest.fixture(scope="module")
def todo_schema(todo_server: ServiceProcess) -> Any:
    return schemathesis.openapi.from_url(f"{todo_server.url}/schema/openapi.json")


@pytest.fixture(scope="module")
def auth_user(auth_server: ServiceProcess) -> dict[str, Any]:
    return signed_in(auth_server)


def fuzz_every_operation(schema: Any, prepare: Any) -> list[str]:
    """Run generated cases for every operation of `schema`; returns the operations run."""
    operations = []
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            prepare(case)
            statuses.append(case.call_and_validate(checks=CHECKS).status_code)

        run()
        operations.append(f"{operation.method.upper()} {operation.path}")
    assert len(statuses) >= 5 * len(operations)  # the cases really went over the wire
    assert all(status < 500 or status in (503, 504) for status in statuses)
    return operations


def test_auth_api(auth_schema: Any, auth_user: dict[str, Any]) -> None:
    def prepare(case: Any) -> None:
        case.headers = {
            **(case.headers or {}),
            "Authorization": f"Bearer {auth_user['access_token']}",
        }

    operations = fuzz_every_operation(auth_schema, prepare)
    assert "POST /auth/login" in operations and "GET /auth/sessions" in operations


def test_todo_api(todo_schema: Any, auth_user: dict[str, Any]) -> None:
    def prepare(case: Any) -> None:
        case.headers = {
            **(case.headers or {}),
            "Authorization": f"Bearer {auth_user['access_token']}",
        }
        if case.path_parameters and "user_id" in case.path_parameters and secrets.randbelow(4):
            # Mostly the caller's own list, so the handlers behind the owner check are reached.
            case.path_parameters["user_id"] = auth_user["user"]["id"]

    operations = fuzz_every_operation(todo_schema, prepare)
    assert len(operations) == 6
