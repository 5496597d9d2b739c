"""Log lines: one JSON object per line, each written to stdout in one piece."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
import structlog

from kit.logs import configure_logging


class RecordingStdout:
    """Stands in for sys.stdout and keeps every write() apart."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def restored_logging() -> Iterator[None]:
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved)
        structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("restored_logging")
def test_each_line_is_one_write_of_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    # Patched here, not in a fixture: pytest puts its own capture back when the test starts.
    stdout = RecordingStdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    configure_logging("kit-test")
    log = structlog.get_logger("access")
    log.info("request", path="/a", status=200)
    log.warning("second", detail="x\ny")
    # An unbuffered stdout (as the services run) turns each write into a system call; a line
    # and its newline written apart would be two, and could interleave with another writer's.
    assert len(stdout.writes) == 2
    lines = [json.loads(write) for write in stdout.writes]
    assert all(write.endswith("\n") and write.count("\n") == 1 for write in stdout.writes)
    assert lines[0]["event"] == "request" and lines[0]["service"] == "kit-test"
    assert lines[1]["level"] == "warning" and lines[1]["detail"] == "x\ny"
