"""Token forgery catalogue (issue 6): every known way to make a verifier accept a token the
auth service did not issue, each a named test with its reference.

Part 1 sends forged tokens to the real services: the in-process todo app (verifying with the
JWKS of a real auth process) and the auth process's own `/auth/me`. Those attacks cannot carry
a valid signature by the real key, by design.

Part 2 covers what only a *validly signed* token can test (claim checks, header checks that
must hold even when the signature is good): tokens signed by a trusted key set of our own,
verified by a bare TokenVerifier (unit level) and by a second todo app fetching that key set
as its JWKS. They also go to `/auth/me`, which does not trust those keys and must say so.

Every rejection is a 401 problem with code `token_invalid` (`token_expired` for expiry) and
an RFC 6750 challenge with error="invalid_token": never a 500, never data. Positive controls
in both parts prove that the same builders produce tokens that pass.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from litestar.testing import AsyncTestClient

from kit import database
from tests.infra import ServiceProcess
from tests.security.conftest import TrustedKeys, Victim
from tests.security.forge import (
    AUDIENCE,
    ISSUER,
    P256_ORDER,
    KeyServer,
    SigningKey,
    assert_token_rejected,
    b64json,
    b64u,
    b64u_decode,
    bearer,
    claims_for,
    compact,
    der_ecdsa_signature,
    ecdsa_der,
    hmac_sha,
    public_key_secrets,
    raw_ecdsa_signature,
    token,
)
from todo_service.__main__ import MIGRATIONS
from todo_service.app import create_app
from todo_service.config import Settings
from token_verifier import TokenRejected, TokenVerifier, VerificationKey
from token_verifier.keys import StaticKeys

Client = AsyncTestClient[Any]
NOW = int(time.time())


@pytest.fixture(scope="module")
def todo_settings(
    auth_server: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """The todo service of tests/todo, in SQLite mode only: a token is judged by the
    middleware before any storage is touched, so a PostgreSQL run would repeat every attack
    for nothing (test_isolation.py covers both storage modes)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('forgery-todo') / 'todo.db'}"
    database.upgrade(url, MIGRATIONS)
    return Settings(database_url=url, jwks_url=f"{auth_server.url}/.well-known/jwks.json")


@pytest.fixture(scope="module")
async def todo(todo_settings: Settings) -> AsyncIterator[Client]:
    """The `todo` app of tests/todo, built the same way but shared by this module: one
    long-lived service taking every attack in turn (the last test checks it still serves the
    genuine token), instead of a fresh app per forged token."""
    async with AsyncTestClient(app=create_app(todo_settings)) as client:
        yield client


async def rejected_by_real_services(
    todo: Client,
    auth_http: httpx.AsyncClient,
    forged: str,
    *,
    user_id: str,
    code: str = "token_invalid",
) -> None:
    """The forged token gets the contract's 401 from the todo service and from /auth/me."""
    assert_token_rejected(await todo.get(f"/api/{user_id}/tasks", headers=bearer(forged)), code)
    assert_token_rejected(await auth_http.get("/auth/me", headers=bearer(forged)), code)


def fresh_claims(victim: Victim, **overrides: Any) -> dict[str, Any]:
    """The victim's genuine claims with current times: all a forger lacks is the signature."""
    return claims_for(
        victim.user.id, sid=victim.claims["sid"], jti=secrets.token_hex(16), **overrides
    )


def real_signature(victim: Victim) -> bytes:
    return b64u_decode(victim.token.split(".")[2])


# ==============================================================================================
# Part 1 - forged tokens against the real services
# ==============================================================================================


async def test_positive_control_genuine_token_passes_real_services(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim
) -> None:
    listed = await todo.get(victim.tasks, headers=bearer(victim.token))
    assert listed.status_code == 200, listed.text
    me = await auth_http.get("/auth/me", headers=bearer(victim.token))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == victim.user.id
    # The same builders as the attacks, with the genuine signature: header and payload
    # re-encoded byte for byte must give the genuine token back.
    h, p, _ = victim.token.split(".")
    assert compact(h, p, real_signature(victim)) == victim.token


# RFC 8725 §2.1 and §3.1; RFC 7518 §3.6; CVE-2015-9235 (jsonwebtoken), CVE-2015-2951 (JWT-PHP):
# "alg": "none" in any spelling, with no signature or with one attached.
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("with_signature", [False, True], ids=["empty-signature", "signature"])
async def test_alg_none_is_rejected(
    todo: Client,
    auth_http: httpx.AsyncClient,
    victim: Victim,
    alg: str,
    with_signature: bool,
) -> None:
    header = {**victim.header, "alg": alg}
    signature = real_signature(victim) if with_signature else b""
    forged = token(header, fresh_claims(victim), signature)
    if not with_signature:
        assert forged.endswith(".")
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# RFC 7515 §4.1.1 (alg is required, case-sensitive); RFC 8725 §3.1.
@pytest.mark.parametrize(
    "alg",
    [..., None, "", "es256", "ES256 ", " ES256", ["ES256"], {"ES256": True}, 256],
    ids=[
        "missing",
        "null",
        "empty",
        "lower-case",
        "trailing-space",
        "leading-space",
        "list",
        "object",
        "number",
    ],
)
async def test_missing_or_malformed_alg_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, alg: Any
) -> None:
    header = {**victim.header, "alg": alg}
    header = {name: value for name, value in header.items() if value is not ...}
    forged = token(header, fresh_claims(victim), real_signature(victim))
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# RFC 8725 §2.1 and §3.1 (key/algorithm confusion); CVE-2016-10555 (jwt-simple),
# CVE-2016-5431 (php-jose), CVE-2022-29217 (PyJWT), CVE-2024-33663 (python-jose):
# HMAC "signed" with the published public key used as the shared secret, in every form a
# confused verifier might hand to HMAC.
@pytest.mark.parametrize(
    "form",
    [
        "jwk-json",
        "jwk-json-compact",
        "jwk-json-sorted",
        "jwk-required-members",
        "jwks-document",
        "pem",
        "pem-without-final-newline",
        "der",
        "uncompressed-point",
    ],
)
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_signed_with_the_public_key_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, form: str, alg: str
) -> None:
    secret = public_key_secrets(victim.jwk)[form]
    forged = token({**victim.header, "alg": alg}, fresh_claims(victim), hmac_sha(alg, secret))
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# RFC 8725 §3.1 and RFC 7517 §4.4: the key's own "alg" decides, never the token's header.
# Algorithm confusion: the real ES256 key's kid with another algorithm, signed by an
# attacker's key of that algorithm's type (CVE-2015-9235 family; CVE-2024-54150 for Ed/EC).
@pytest.mark.parametrize("alg", ["RS256", "PS256", "Ed25519", "EdDSA", "ES384", "ES512", "ES256K"])
async def test_algorithm_confusion_on_the_es256_key_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, alg: str
) -> None:
    attacker = SigningKey.generate(alg)
    forged = attacker.sign({"kid": victim.kid, "alg": alg}, fresh_claims(victim))
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# RFC 7515 §4.1.4: a kid the JWKS does not publish, signed by the attacker's own ES256 key
# (and near misses of the real kid).
@pytest.mark.parametrize("variant", ["random", "upper-case", "trailing-space", "prefix"])
async def test_unknown_kid_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, variant: str
) -> None:
    kid = {
        "random": secrets.token_urlsafe(32),
        "upper-case": victim.kid.upper(),
        "trailing-space": f"{victim.kid} ",
        "prefix": victim.kid[:-1],
    }[variant]
    assert kid != victim.kid
    forged = SigningKey.generate("ES256", kid).sign({}, fresh_claims(victim))
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# RFC 7515 §4.1.4 and RFC 8725 §3.10 (do not trust received header parameters): kid values
# built to reach a file, a SQL query or a URL, or to break the lookup by type or size.
MALICIOUS_KIDS: dict[str, Any] = {
    "path-traversal": "../../etc/passwd",
    "path-traversal-dev-null": "../../../../../../dev/null",
    "sql-injection": "' OR 1=1 --",
    "sql-union": "x' UNION SELECT 'AAAA' --",
    "url": "http://127.0.0.1:9/jwks.json",
    "nul-byte": "\u0000",
    "empty": "",
    "129-chars": "k" * 129,
    "10-KiB": "k" * 10 * 1024,
    "number": 1,
    "null": None,
    "boolean": True,
    "list-of-real-kid": [...],
    "object-with-real-kid": {"kid": ...},
    "missing": ...,
}


@pytest.mark.parametrize("case", list(MALICIOUS_KIDS))
async def test_malicious_kid_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, case: str
) -> None:
    kid = MALICIOUS_KIDS[case]
    if case == "list-of-real-kid":
        kid = [victim.kid]
    elif case == "object-with-real-kid":
        kid = {"kid": victim.kid}
    forged = SigningKey.generate("ES256").sign({"kid": kid}, fresh_claims(victim))
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


def key_embedding_header(name: str, attacker: SigningKey, server: KeyServer) -> dict[str, Any]:
    """The header parameter that lets a token name its own (attacker's) key."""
    if name == "jku":
        body = json.dumps({"keys": [attacker.public_jwk()]}).encode()
        return {"jku": server.publish(f"/{attacker.kid}/jwks.json", body)}
    if name == "x5u":
        pem = base64.encodebytes(attacker.certificate_der()).decode()
        body = f"-----BEGIN CERTIFICATE-----\n{pem}-----END CERTIFICATE-----\n".encode()
        return {"x5u": server.publish(f"/{attacker.kid}/cert.pem", body, "application/pem")}
    if name == "jwk":
        return {"jwk": attacker.public_jwk()}
    assert name == "x5c"
    return {"x5c": [base64.b64encode(attacker.certificate_der()).decode()]}


# RFC 7515 §4.1.2 (jku), §4.1.3 (jwk), §4.1.5 (x5u), §4.1.6 (x5c); RFC 8725 §3.10;
# CVE-2018-0114 (node-jose, embedded jwk), CVE-2019-20933 (jku SSRF class): the token carries
# or points at the attacker's key, which really signs it; the attacker's server must never be
# asked.
@pytest.mark.parametrize("parameter", ["jku", "x5u", "jwk", "x5c"])
@pytest.mark.parametrize("kid", ["attacker-kid", "real-kid"])
async def test_key_embedding_headers_are_rejected(
    todo: Client,
    auth_http: httpx.AsyncClient,
    victim: Victim,
    attacker_server: KeyServer,
    parameter: str,
    kid: str,
) -> None:
    attacker = SigningKey.generate("ES256")
    header = key_embedding_header(parameter, attacker, attacker_server)
    if kid == "real-kid":
        header["kid"] = victim.kid
    before = len(attacker_server.requests)
    forged = attacker.sign(header, fresh_claims(victim))
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)
    assert attacker_server.requests[before:] == []


# RFC 7515 §4.1.11: a recipient must reject a token whose "crit" lists anything it does not
# implement (and "crit" must not be empty); RFC 7797 "b64": false would change what is signed.
CRIT_HEADERS: dict[str, dict[str, Any]] = {
    "exp": {"crit": ["exp"], "exp": NOW + 3600},
    "b64-false": {"crit": ["b64"], "b64": False},
    "unknown-extension": {"crit": ["x-must-understand"], "x-must-understand": True},
    "empty-list": {"crit": []},
    "not-a-list": {"crit": "exp"},
}


@pytest.mark.parametrize("case", list(CRIT_HEADERS))
async def test_crit_header_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, case: str
) -> None:
    header = {**victim.header, **CRIT_HEADERS[case]}
    forged = token(header, fresh_claims(victim), real_signature(victim))
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# CVE-2022-21449 ("psychic signatures", Java ECDSA): r = s = 0 in JWS's raw 64-byte form, and
# the out-of-range values a sloppy range check lets through (RFC 8725 §3.4, SEC 1 §4.1.4).
PSYCHIC_SIGNATURES: dict[str, bytes] = {
    "r=s=0": bytes(64),
    "r=s=n": raw_ecdsa_signature(P256_ORDER, P256_ORDER),
    "r=0,s=1": raw_ecdsa_signature(0, 1),
    "r=1,s=0": raw_ecdsa_signature(1, 0),
    "r=s=n+1": raw_ecdsa_signature(P256_ORDER + 1, P256_ORDER + 1),
    "all-ones": b"\xff" * 64,
    "der-r=s=0": der_ecdsa_signature(0, 0),
}


@pytest.mark.parametrize("case", list(PSYCHIC_SIGNATURES))
async def test_es256_psychic_signature_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, case: str
) -> None:
    forged = token(victim.header, fresh_claims(victim), PSYCHIC_SIGNATURES[case])
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# RFC 7518 §3.4: an ES256 signature is exactly 64 bytes; anything else is not one.
@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 128, 512])
async def test_es256_signature_of_wrong_length_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, length: int
) -> None:
    h, p, _ = victim.token.split(".")
    forged = compact(h, p, (real_signature(victim) * 8)[:length])
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


def structural_variants(genuine: str) -> dict[str, str]:
    h, p, s = genuine.split(".")
    return {
        # CVE-2020-28042 (ServiceStack): signature stripped, dot kept or not.
        "stripped-signature": f"{h}.{p}.",
        "two-segments": f"{h}.{p}",
        "one-segment": h,
        # RFC 7515 §7.1: exactly three segments. Four, and five (a JWE's shape, RFC 7516 §9).
        "four-segments": f"{h}.{p}.{s}.{s}",
        "five-segments-jwe-shape": f"{h}.{p}.{s}.{s}.{s}",
        "extra-dot-after-header": f"{h}..{p}.{s}",
        "extra-dot-before-signature": f"{h}.{p}..{s}",
        "leading-dot": f".{h}.{p}.{s}",
        "trailing-dot": f"{h}.{p}.{s}.",
        "only-dots": "..",
        "empty-header": f".{p}.{s}",
        "empty-payload": f"{h}..{s}",
        # Truncations of a genuine token.
        "truncated-last-char": genuine[:-1],
        "truncated-half-signature": f"{h}.{p}.{s[: len(s) // 2]}",
        "truncated-half-token": genuine[: len(genuine) // 2],
        "truncated-payload": f"{h}.{p[:-1]}.{s}",
        "signature-char-flipped": f"{h}.{p}.{s[:-2]}{'A' if s[-2] != 'A' else 'B'}{s[-1]}",
        # The same signature bytes to a lax decoder: the last character differs only in bits
        # past the end of the data (RFC 4648 §3.5, canonical encoding).
        "signature-non-canonical-last-char": f"{h}.{p}.{s[:-1]}{_other_trailing_bits(s[-1])}",
        # Standard alphabet and padding (RFC 7515 §2: base64url without padding).
        "signature-standard-base64": f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}=",
        "whitespace-inside": f"{h}. {p}.{s}",
        # RFC 7515 §7.2: the JWS JSON serialization is not an access token's form.
        "json-serialization": json.dumps(
            {"protected": h, "payload": p, "signature": s}, separators=(",", ":")
        ),
    }


def _other_trailing_bits(char: str) -> str:
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    return alphabet[alphabet.index(char) ^ 1]


STRUCTURAL_CASES = [
    "stripped-signature",
    "two-segments",
    "one-segment",
    "four-segments",
    "five-segments-jwe-shape",
    "extra-dot-after-header",
    "extra-dot-before-signature",
    "leading-dot",
    "trailing-dot",
    "only-dots",
    "empty-header",
    "empty-payload",
    "truncated-last-char",
    "truncated-half-signature",
    "truncated-half-token",
    "truncated-payload",
    "signature-char-flipped",
    "signature-non-canonical-last-char",
    "signature-standard-base64",
    "whitespace-inside",
    "json-serialization",
]


# RFC 7515 §5.2 and §7.1: a compact JWS is three base64url segments; anything else is refused.
@pytest.mark.parametrize("case", STRUCTURAL_CASES)
async def test_structurally_broken_token_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, case: str
) -> None:
    forged = structural_variants(victim.token)[case]
    assert forged != victim.token
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


# RFC 7515 §5.2 (the signature covers header and payload as sent): a genuine token with its
# payload or header changed, keeping the original signature.
@pytest.mark.parametrize(
    "change",
    ["sub-to-other-user", "exp-extended", "aud-changed", "extra-admin-claim", "kid-to-other-key"],
)
async def test_tampered_token_keeping_the_signature_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, change: str
) -> None:
    header_segment, payload_segment, signature = victim.token.split(".")
    claims = dict(victim.claims)
    user_id = victim.user.id
    if change == "sub-to-other-user":
        claims["sub"] = user_id = str(uuid.uuid4())
    elif change == "exp-extended":
        claims["exp"] += 365 * 86400
    elif change == "aud-changed":
        claims["aud"] = [AUDIENCE, "admin-api"]
    elif change == "extra-admin-claim":
        claims["admin"] = True
    else:
        others = [key["kid"] for key in victim.jwks["keys"] if key["kid"] != victim.kid]
        if not others:
            pytest.skip("the JWKS publishes a single key")
        header_segment = b64json({**victim.header, "kid": others[0]})
    if claims != victim.claims:
        payload_segment = b64json(claims)
    # Only the tampered segment is re-encoded; the rest is the genuine token byte for byte.
    forged = f"{header_segment}.{payload_segment}.{signature}"
    assert forged != victim.token
    await rejected_by_real_services(todo, auth_http, forged, user_id=user_id)


# Contract (token checks: tokens over 8 KiB rejected unread); CWE-400 - bound the work an
# unauthenticated input can cause.
@pytest.mark.parametrize("size", [8 * 1024 + 1, 9 * 1024, 16 * 1024])
async def test_oversized_token_is_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, size: int
) -> None:
    h, _, s = victim.token.split(".")

    def padded(pad: int) -> str:
        return f"{h}.{b64json({**victim.claims, 'pad': 'x' * pad})}.{s}"

    pad = (size - len(padded(0))) * 3 // 4 - 4
    while len(padded(pad)) < size:
        pad += 1
    forged = padded(pad)
    assert size <= len(forged) <= size + 4, len(forged)
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


def undecodable_variants(victim: Victim) -> dict[str, str]:
    h, p, s = victim.token.split(".")
    header_json = json.dumps(victim.header).encode()
    headers: dict[str, bytes] = {
        "header-not-utf8": b"\xff\xfe\xfd",
        "header-invalid-utf8-in-json": b'{"alg":"ES256","typ":"at+jwt","kid":"\xc3\x28"}',
        "header-not-json": b"alg=ES256",
        "header-json-array": b"[1,2,3]",
        "header-json-string": b'"ES256"',
        "header-json-null": b"null",
        "header-json-number": b"1e999",
        "header-nan-kid": b'{"alg":"ES256","typ":"at+jwt","kid":NaN}',
        "header-duplicate-alg": header_json[:-1] + b', "alg": "none"}',
        "header-utf16": json.dumps(victim.header).encode("utf-16"),
        "header-utf8-bom": b"\xef\xbb\xbf" + header_json,
        "header-deeply-nested": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    }
    payloads: dict[str, bytes] = {
        "payload-not-utf8": b"\xc3\x28\xa0\xa1",
        "payload-not-json": b"sub=admin",
        "payload-json-array": b"[]",
    }
    variants = {name: f"{b64u(raw)}.{p}.{s}" for name, raw in headers.items()}
    variants |= {name: f"{h}.{b64u(raw)}.{s}" for name, raw in payloads.items()}
    variants["header-not-base64"] = f"!!!!.{p}.{s}"
    variants["payload-not-base64"] = f"{h}.%%%%.{s}"
    return variants


UNDECODABLE_CASES = [
    "header-not-utf8",
    "header-invalid-utf8-in-json",
    "payload-not-utf8",
    "header-not-json",
    "payload-not-json",
    "header-json-array",
    "header-json-string",
    "header-json-null",
    "header-json-number",
    "payload-json-array",
    "header-not-base64",
    "payload-not-base64",
    "header-nan-kid",
    "header-duplicate-alg",
    "header-utf16",
    "header-utf8-bom",
    "header-deeply-nested",
]


# RFC 7515 §5.2 steps 2-4 (base64url, UTF-8, JSON object) and RFC 8725 §3.7 (UTF-8 only).
@pytest.mark.parametrize("case", UNDECODABLE_CASES)
async def test_undecodable_segments_are_rejected(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim, case: str
) -> None:
    forged = undecodable_variants(victim)[case]
    await rejected_by_real_services(todo, auth_http, forged, user_id=victim.user.id)


async def test_positive_control_genuine_token_still_passes_after_the_attacks(
    todo: Client, auth_http: httpx.AsyncClient, victim: Victim
) -> None:
    """Every attack above hit the same todo app and auth process: neither got stuck in a state
    that refuses the genuine token (a refetch storm, a poisoned key cache)."""
    assert (await todo.get(victim.tasks, headers=bearer(victim.token))).status_code == 200
    assert (await auth_http.get("/auth/me", headers=bearer(victim.token))).status_code == 200


# ==============================================================================================
# Part 2 - validly signed tokens by a trusted key set of our own
# ==============================================================================================


async def rejected_everywhere(
    verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    forged: str,
    *,
    code: str = "token_invalid",
    user_id: str | None = None,
) -> None:
    """Rejected by the bare verifier, by the todo app trusting our keys, and by /auth/me
    (which does not trust them: always token_invalid there)."""
    with pytest.raises(TokenRejected) as rejected:
        await verifier.verify(forged)
    assert rejected.value.code == code, rejected.value.detail
    user_id = user_id or str(uuid.uuid4())
    response = await static_todo.get(
        f"/api/{quote(user_id, safe='')}/tasks", headers=bearer(forged)
    )
    assert_token_rejected(response, code)
    assert_token_rejected(await auth_http.get("/auth/me", headers=bearer(forged)))


def key_named(trusted: TrustedKeys, name: str) -> SigningKey:
    key = getattr(trusted, name)
    assert isinstance(key, SigningKey)
    return key


# Positive control for part 2: every trusted key, with the accepted spellings of typ and aud,
# passes the bare verifier and the todo app - so every rejection below is the attack's doing.
@pytest.mark.parametrize("key_name", ["es256", "rs256", "ps256", "ed25519"])
@pytest.mark.parametrize(
    ("header", "overrides"),
    [
        ({}, {}),
        ({"typ": "application/at+jwt"}, {}),
        ({"typ": "AT+JWT"}, {}),
        ({}, {"aud": ["other-api", AUDIENCE]}),
        ({}, {"nbf": ...}),
        ({}, {"exp": int(time.time()) + 3600.5}),
    ],
    ids=["plain", "typ-media-type", "typ-upper-case", "aud-list-with-ours", "no-nbf", "float-exp"],
)
async def test_positive_control_trusted_token_passes(
    static_verifier: TokenVerifier,
    static_todo: Client,
    trusted: TrustedKeys,
    key_name: str,
    header: dict[str, Any],
    overrides: dict[str, Any],
) -> None:
    user_id = str(uuid.uuid4())
    signed = key_named(trusted, key_name).sign(header, claims_for(user_id, **overrides))
    claims = await static_verifier.verify(signed)
    assert claims.sub == user_id
    response = await static_todo.get(f"/api/{user_id}/tasks", headers=bearer(signed))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "total": 0}


# RFC 7519 §4.1.4-§4.1.6 and RFC 9068 §4: exp, nbf and iat checked with at most 60 s leeway.
# Times are offsets from the moment the token is made.
@pytest.mark.parametrize(
    ("offsets", "code"),
    [
        ({"exp": -61 - 5, "iat": -900, "nbf": -900}, "token_expired"),
        ({"exp": -86400, "iat": -90000, "nbf": -90000}, "token_expired"),
        ({"exp": None, "iat": None, "nbf": None}, "token_expired"),
        ({"nbf": 61 + 5}, "token_invalid"),
        ({"nbf": 86400}, "token_invalid"),
        ({"iat": 61 + 5}, "token_invalid"),
        ({"iat": 86400, "nbf": 86400, "exp": 90000}, "token_invalid"),
    ],
    ids=[
        "exp-past-beyond-leeway",
        "exp-a-day-ago",
        "exp-iat-nbf-epoch",
        "nbf-future-beyond-leeway",
        "nbf-tomorrow",
        "iat-future-beyond-leeway",
        "issued-tomorrow",
    ],
)
async def test_expired_or_not_yet_valid_token_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    offsets: dict[str, int | None],
    code: str,
) -> None:
    now = int(time.time())
    times = {name: 0 if offset is None else now + offset for name, offset in offsets.items()}
    forged = trusted.es256.sign({}, claims_for(str(uuid.uuid4()), **times))
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged, code=code)


# RFC 7519 §2 (NumericDate is a JSON number) and §4.1.4; RFC 9068 §2.2 (exp, iat required).
@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": str(NOW + 600)},
        {"exp": ...},
        {"exp": None},
        {"exp": True},
        {"exp": [NOW + 600]},
        {"exp": {"$gt": 0}},
        {"iat": ...},
        {"iat": str(NOW)},
        {"nbf": str(NOW)},
        {"nbf": False},
    ],
    ids=[
        "exp-string",
        "exp-missing",
        "exp-null",
        "exp-boolean",
        "exp-list",
        "exp-object",
        "iat-missing",
        "iat-string",
        "nbf-string",
        "nbf-boolean",
    ],
)
async def test_malformed_time_claims_are_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    overrides: dict[str, Any],
) -> None:
    forged = trusted.es256.sign({}, claims_for(str(uuid.uuid4()), **overrides))
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


def with_raw_claim(key: SigningKey, name: str, literal: str) -> str:
    """A token whose claim `name` is the JSON literal `literal` (Infinity, NaN, 1e999), which
    Python's json module parses although RFC 8259 has no such numbers."""
    claims = claims_for(str(uuid.uuid4()), **{name: 0})
    text = json.dumps(claims, separators=(",", ":")).replace(f'"{name}":0', f'"{name}":{literal}')
    header = b64json({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"})
    return compact(header, b64u(text.encode()), key.signer())


# RFC 7519 §2 and RFC 8259 §6 (no Infinity/NaN in JSON); contract: no request produces a 500.
@pytest.mark.parametrize(
    ("name", "literal"),
    [("exp", "Infinity"), ("exp", "1e999"), ("exp", "NaN"), ("iat", "-Infinity"), ("nbf", "NaN")],
    ids=["exp-infinity", "exp-1e999", "exp-nan", "iat-minus-infinity", "nbf-nan"],
)
async def test_non_finite_time_claims_are_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    name: str,
    literal: str,
) -> None:
    forged = with_raw_claim(trusted.es256, name, literal)
    # The services must answer 401, never 500 - checked before the verifier raises.
    response = await static_todo.get(f"/api/{uuid.uuid4()}/tasks", headers=bearer(forged))
    assert response.status_code != 500, response.text
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


# RFC 7519 §4.1.1, RFC 8725 §3.8 and RFC 9068 §4: iss must be exactly ours.
@pytest.mark.parametrize(
    "iss",
    [
        "http://evil.example",
        f"{ISSUER}/",
        ISSUER.replace("http://", "https://"),
        ISSUER.upper(),
        f"{ISSUER}.evil.example",
        "",
        None,
        [ISSUER],
        ...,
    ],
    ids=[
        "other",
        "trailing-slash",
        "https",
        "upper-case",
        "suffix",
        "empty",
        "null",
        "list",
        "missing",
    ],
)
async def test_wrong_issuer_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    iss: Any,
) -> None:
    forged = trusted.es256.sign({}, claims_for(str(uuid.uuid4()), iss=iss))
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


# RFC 7519 §4.1.3, RFC 8725 §3.9 and RFC 9068 §4: aud must contain our audience.
@pytest.mark.parametrize(
    "aud",
    [
        "other-api",
        "TODO-API",
        "todo-api-admin",
        f" {AUDIENCE}",
        ["other-api", "admin-api"],
        [],
        [[AUDIENCE]],
        [AUDIENCE, 1],
        {AUDIENCE: True},
        1,
        None,
        ...,
    ],
    ids=[
        "other",
        "upper-case",
        "prefix-match",
        "leading-space",
        "list-without-ours",
        "empty-list",
        "nested-list",
        "list-with-a-number",
        "object",
        "number",
        "null",
        "missing",
    ],
)
async def test_wrong_audience_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    aud: Any,
) -> None:
    forged = trusted.es256.sign({}, claims_for(str(uuid.uuid4()), aud=aud))
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


# RFC 9068 §2.1 and §4, RFC 8725 §3.11 (explicit typing): an ID token or a generic JWT signed
# by the same key is not an access token.
@pytest.mark.parametrize(
    "typ",
    ["JWT", "jwt", "application/jwt", "id_token+jwt", "at+jwt ", "at+jwt;x=y", "", None, 1, ...],
    ids=[
        "JWT",
        "jwt",
        "application-jwt",
        "id-token",
        "trailing-space",
        "parameter",
        "empty",
        "null",
        "number",
        "missing",
    ],
)
async def test_wrong_or_missing_typ_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    typ: Any,
) -> None:
    forged = trusted.es256.sign({"typ": typ}, claims_for(str(uuid.uuid4())))
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


# RFC 9068 §2.2: sub and the session are required; RFC 7519 §4.1.2 (sub is a string).
@pytest.mark.parametrize(
    "overrides",
    [{"sub": ...}, {"sub": ""}, {"sub": 42}, {"sub": None}, {"sid": ...}, {"sid": ""}],
    ids=["sub-missing", "sub-empty", "sub-number", "sub-null", "sid-missing", "sid-empty"],
)
async def test_missing_subject_or_session_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    overrides: dict[str, Any],
) -> None:
    forged = trusted.es256.sign({}, claims_for(str(uuid.uuid4()), **overrides))
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


# Contract: sub is the user id, a UUID; RFC 8725 §3.10 (do not trust received claims). A
# validly signed token whose sub is not a UUID must not reach anyone's tasks through the path
# that equals it. The reusable verifier is generic (it accepts any non-empty sub); the todo
# service refuses it: 401 token_invalid or 403 forbidden, never 2xx, never 500.
@pytest.mark.parametrize(
    "sub",
    ["admin", "*", "' OR 1=1 --", "..", "%2e%2e", "not-a-uuid-but-long-" + "x" * 40, "1"],
)
async def test_subject_that_is_not_a_uuid_cannot_reach_tasks(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    sub: str,
) -> None:
    forged = trusted.es256.sign({}, claims_for(sub))
    assert (await static_verifier.verify(forged)).sub == sub
    path = f"/api/{quote(sub, safe='')}/tasks"
    for method in ("GET", "POST"):
        response = await static_todo.request(
            method, path, json={"title": "planted"}, headers=bearer(forged)
        )
        assert response.status_code in (401, 403, 404), (
            method,
            response.status_code,
            response.text,
        )
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] in ("token_invalid", "forbidden", "not_found")
        assert "items" not in response.json()
    assert_token_rejected(await auth_http.get("/auth/me", headers=bearer(forged)))


def signed_with_header(trusted: TrustedKeys, attacker_server: KeyServer, case: str) -> str:
    """A token signed by a trusted key, whose header carries one thing it must not."""
    claims = claims_for(str(uuid.uuid4()))
    es256 = trusted.es256
    if case in ("jku", "x5u", "jwk", "x5c"):
        return es256.sign(key_embedding_header(case, es256, attacker_server), claims)
    if case.startswith("crit-"):
        return es256.sign(CRIT_HEADERS[case.removeprefix("crit-")], claims)
    if case == "rs256-key-as-ps256":
        return trusted.rs256.sign({"alg": "PS256"}, claims)
    if case == "ps256-key-as-rs256":
        return trusted.ps256.sign({"alg": "RS256"}, claims)
    if case == "ed25519-key-as-eddsa":
        return trusted.ed25519.sign({"alg": "EdDSA"}, claims)
    if case == "es256-key-none":
        return token({"alg": "none", "kid": es256.kid, "typ": "at+jwt"}, claims, b"")
    if case.startswith("hmac-with-public-"):
        form = case.removeprefix("hmac-with-public-")
        secret = public_key_secrets(es256.public_jwk())[form]
        return token(
            {"alg": "HS256", "kid": es256.kid, "typ": "at+jwt"}, claims, hmac_sha("HS256", secret)
        )
    if case == "es256-der-signature":
        header = b64json({"alg": "ES256", "kid": es256.kid, "typ": "at+jwt"})
        assert isinstance(es256.private, ec.EllipticCurvePrivateKey)
        return compact(header, b64json(claims), ecdsa_der(es256.private))
    if case == "es256-zero-signature":
        return token({"alg": "ES256", "kid": es256.kid, "typ": "at+jwt"}, claims, bytes(64))
    if case == "kid-of-another-trusted-key":
        return es256.sign({"kid": trusted.rs256.kid, "alg": "ES256"}, claims)
    if case == "b64-false-without-crit":
        return es256.sign({"b64": False}, claims)
    if case == "unregistered-member":
        return es256.sign({"role": "admin"}, claims)
    raise AssertionError(case)


# Header checks that must hold even when the signature is good: RFC 8725 §3.1 and §3.10,
# RFC 7515 §4.1.2-§4.1.6 and §4.1.11, RFC 7518 §3.4 (raw ECDSA signature form),
# CVE-2018-0114, CVE-2016-10555, CVE-2022-21449.
@pytest.mark.parametrize(
    "case",
    [
        "jku",
        "x5u",
        "jwk",
        "x5c",
        "crit-exp",
        "crit-b64-false",
        "crit-unknown-extension",
        "crit-empty-list",
        "rs256-key-as-ps256",
        "ps256-key-as-rs256",
        "ed25519-key-as-eddsa",
        "es256-key-none",
        "hmac-with-public-pem",
        "hmac-with-public-jwk-json",
        "es256-der-signature",
        "es256-zero-signature",
        "kid-of-another-trusted-key",
        # RFC 7797 (unencoded payload), which must come with crit: refused either way.
        "b64-false-without-crit",
        # Header members outside RFC 7515's registry are refused (joserfc's strict header
        # check, which the verifier applies to the header it parsed itself).
        "unregistered-member",
    ],
)
async def test_validly_signed_token_with_forbidden_header_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    attacker_server: KeyServer,
    case: str,
) -> None:
    before = len(attacker_server.requests)
    forged = signed_with_header(trusted, attacker_server, case)
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)
    assert attacker_server.requests[before:] == []


class CountingKeys:
    """A KeySource that counts lookups, to prove a token was rejected unread."""

    def __init__(self, inner: StaticKeys) -> None:
        self._inner = inner
        self.lookups = 0
        self.generation = 0

    async def key_for(self, kid: str) -> VerificationKey | None:
        self.lookups += 1
        return await self._inner.key_for(kid)


# Contract: tokens over 8 KiB are rejected unread - even validly signed ones, and before any
# key lookup.
async def test_oversized_validly_signed_token_is_rejected_unread(
    static_todo: Client, auth_http: httpx.AsyncClient, trusted: TrustedKeys
) -> None:
    keys = CountingKeys(StaticKeys(trusted.jwks()))
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    small = trusted.es256.sign({}, claims_for(str(uuid.uuid4())))
    await verifier.verify(small)
    assert keys.lookups == 1
    big = trusted.es256.sign({}, claims_for(str(uuid.uuid4()), pad="x" * 8 * 1024))
    assert len(big) > 8 * 1024
    await rejected_everywhere(verifier, static_todo, auth_http, big)
    assert keys.lookups == 1


# RFC 7515 §5.2 step 8 onwards and RFC 7519 §7.2: a good signature over a payload that is not
# a UTF-8 JSON object is still not a token.
@pytest.mark.parametrize(
    "payload",
    [b"\xc3\x28\xa0\xa1", b"sub=admin", b"[]", b"null", b"42", b'"claims"', b""],
    ids=["not-utf8", "not-json", "array", "null", "number", "string", "empty"],
)
async def test_validly_signed_non_json_payload_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    payload: bytes,
) -> None:
    header = b64json({"alg": "ES256", "kid": trusted.es256.kid, "typ": "at+jwt"})
    forged = compact(header, b64u(payload), trusted.es256.signer())
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


def encoded(key: SigningKey, part: str, encoding: str) -> str:
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    claims = claims_for(str(uuid.uuid4()))
    header_bytes = json.dumps(header).encode()
    payload_bytes = json.dumps(claims).encode()
    if part == "header":
        header_bytes = json.dumps(header).encode(encoding)
    else:
        payload_bytes = json.dumps(claims).encode(encoding)
    return compact(b64u(header_bytes), b64u(payload_bytes), key.signer())


# RFC 8725 §3.7 ("JWTs MUST use UTF-8"), RFC 7515 §5.2 steps 3 and 8 (UTF-8 JSON): JSON in
# another Unicode encoding, even validly signed, is not a JWS. Python's json.loads(bytes)
# auto-detects UTF-16/32 and strips a UTF-8 BOM, so a bytes-level parse accepts it.
@pytest.mark.parametrize("part", ["header", "payload"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
async def test_json_in_another_unicode_encoding_is_rejected(
    static_verifier: TokenVerifier,
    static_todo: Client,
    auth_http: httpx.AsyncClient,
    trusted: TrustedKeys,
    part: str,
    encoding: str,
) -> None:
    forged = encoded(trusted.es256, part, encoding)
    await rejected_everywhere(static_verifier, static_todo, auth_http, forged)


def test_catalogue_builders_are_sane(trusted: TrustedKeys, victim: Victim) -> None:
    """The helpers produce what the tests above claim (guards against vacuous attacks)."""
    signed = trusted.es256.sign({}, claims_for("x"))
    header = json.loads(b64u_decode(signed.split(".")[0]))
    assert header == {"alg": "ES256", "kid": trusted.es256.kid, "typ": "at+jwt"}
    assert len(b64u_decode(signed.split(".")[2])) == 64
    assert PSYCHIC_SIGNATURES["r=s=0"] == bytes(64)
    assert set(undecodable_variants(victim)) == set(UNDECODABLE_CASES)
    assert set(structural_variants(victim.token)) == set(STRUCTURAL_CASES)
    pem = public_key_secrets(victim.jwk)["pem"]
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert victim.jwk["alg"] == "ES256"
    assert victim.kid in {key["kid"] for key in victim.jwks["keys"]}


def test_attacker_server_records_what_it_is_asked(attacker_server: KeyServer) -> None:
    """The "never asked" checks above would notice a fetch of a jku/x5u URL."""
    url = attacker_server.publish("/probe.json", b"{}")
    before = len(attacker_server.requests)
    assert httpx.get(url).status_code == 200
    assert attacker_server.requests[before:] == ["/probe.json"]
