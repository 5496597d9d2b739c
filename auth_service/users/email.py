"""Email addresses: trimmed, lower-cased, checked syntactically (no DNS)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from kit.problems import FieldError

MAX_LENGTH = 320


def normalise_email(raw: str) -> str:
    candidate = raw.strip().lower()
    if not candidate or len(candidate) > MAX_LENGTH:
        raise FieldError("email", "must be a valid email address")
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        raise FieldError("email", "must be a valid email address") from None
    return checked.normalized.lower()
