"""What a password must be (NIST SP 800-63B): 8–128 characters after NFKC, not guessable.

Guessability is judged by zxcvbn (frequency lists of breached passwords, words, names, keyboard
patterns, sequences), with the account's email as context, and a score of at least 2 (more than
about 10^8 guesses) required. No composition rules.
"""

from __future__ import annotations

import unicodedata

from zxcvbn import zxcvbn

from kit.problems import FieldError

MIN_LENGTH = 8
MAX_LENGTH = 128
MIN_SCORE = 2
# zxcvbn's matching grows with length; past this many characters a password that was not
# guessable in its first part is not made guessable by the rest.
SCORED_PREFIX = 64


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_password(field: str, password: str, *, context: tuple[str, ...] = ()) -> str:
    """Return the normalised password or raise a 422 naming `field`."""
    normalised = normalise(password)
    if len(normalised) < MIN_LENGTH:
        raise FieldError(field, f"must be at least {MIN_LENGTH} characters", "weak_password")
    if len(normalised) > MAX_LENGTH:
        raise FieldError(field, f"must be at most {MAX_LENGTH} characters")
    if "\x00" in normalised:
        raise FieldError(field, "must not contain NUL characters")
    hints = [
        *context,
        *(p for item in context for p in item.replace("@", " ").replace(".", " ").split()),
    ]
    result = zxcvbn(normalised[:SCORED_PREFIX], user_inputs=hints)
    if int(result["score"]) < MIN_SCORE:
        raise FieldError(field, "is too common or too easy to guess", "weak_password")
    return normalised
