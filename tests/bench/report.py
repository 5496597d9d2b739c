"""The one table: a row per performance target of DESIGN.md, plus informational rows."""

from __future__ import annotations

from dataclasses import dataclass

PASS, SHORT, INFO = "pass", "short", "info"


@dataclass
class Row:
    target: str
    target_value: str
    measured: str = ""
    ratio: str = ""
    verdict: str = ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class Report:
    """Rows in a fixed order; every row starts as not measured, so a failure never loses one."""

    HEADER = ("target", "measured", "ratio judged", "target value", "pass/short")

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def add(self, key: str, target: str, target_value: str) -> None:
        self.rows[key] = Row(target, target_value)

    def set(self, key: str, *, measured: str, ratio: str, verdict: str) -> None:
        row = self.rows[key]
        row.measured, row.ratio, row.verdict = measured, ratio, verdict

    def judge(self, key: str, *, measured: str, ratio: str, ok: bool) -> None:
        self.set(key, measured=measured, ratio=ratio, verdict=PASS if ok else SHORT)

    def info(self, key: str, *, measured: str, ratio: str) -> None:
        self.set(key, measured=measured, ratio=ratio, verdict=INFO)

    def filled(self, key: str) -> bool:
        return bool(self.rows[key].verdict)

    def not_measured(self, key: str, reason: str) -> None:
        if not self.filled(key):
            reason = " ".join(reason.split())
            if len(reason) > 300:
                reason = reason[:300] + "…"
            self.set(key, measured=f"not measured: {reason}", ratio="—", verdict="—")

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(self.HEADER) + " |",
            "|" + "---|" * len(self.HEADER),
        ]
        for row in self.rows.values():
            cells = (row.target, row.measured, row.ratio, row.target_value, row.verdict)
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        return "\n".join(lines)


def n(value: float, digits: int = 0) -> str:
    """A number with thousands separators."""
    return f"{value:,.{digits}f}"
