"""Refresh-token material: generation, the stored digest, and the sealed grace successor."""

from __future__ import annotations

import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# 32 random bytes = 256 bits, URL-safe base64 without padding: 43 characters.
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 512
_NONCE_BYTES = 12


def new_refresh_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """What the store keeps instead of the token: SHA-256, hex. A 256-bit random token needs no
    salt or slow hash — there is nothing to guess."""
    return hashlib.sha256(token.encode()).hexdigest()


def _grace_key(rotated_token: str) -> bytes:
    return hashlib.sha256(b"grace\x00" + rotated_token.encode()).digest()


def seal_successor(successor: str, *, rotated_token: str) -> bytes:
    """The successor, encrypted so that only a holder of the rotated token can read it back."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(_grace_key(rotated_token)).encrypt(nonce, successor.encode(), None)


def open_successor(sealed: bytes, *, rotated_token: str) -> str | None:
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    try:
        return AESGCM(_grace_key(rotated_token)).decrypt(nonce, ciphertext, None).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError):
        return None
