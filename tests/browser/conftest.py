"""Fixtures for the browser tests: a real stack with short-lived access tokens, and the system
Chromium driven by Playwright's sync API.

Without Chromium the tests skip loudly; with CI=true they fail instead."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.infra import IN_CI, ROOT, Stack, start_stack

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
ACCESS_TOKEN_TTL = 5  # seconds: the tests outlive several access tokens


@pytest.fixture(scope="module")
def chromium() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"Chromium not found at {CHROMIUM} (install with: apt-get install -y chromium)"
    if IN_CI:
        pytest.fail(f"required browser unavailable in CI: {reason}")
    print(f"\n*** SKIPPING BROWSER TESTS: {reason} ***", file=sys.stderr)
    pytest.skip(f"BROWSER UNAVAILABLE: {reason}")


@pytest.fixture(scope="module")
def web_stack(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Auth, todo and gateway as real processes; the gateway serves the web client."""
    stack = start_stack(
        tmp_path_factory.mktemp("browser-stack"),
        {
            "AUTH_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL),
            # Every tab refreshes every few seconds here; the per-address limit is tested elsewhere.
            "GATEWAY_AUTH_RATE_LIMIT": "1000/minute",
        },
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
