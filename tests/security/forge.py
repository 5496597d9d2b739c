"""Hand-made JWS for attack tests: every byte is ours, no JOSE library gets a say in what is
signed, so a forged token is exactly the token an attacker would send."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID

ISSUER = "http://127.0.0.1:8000"
AUDIENCE = "todo-api"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

Signer = Callable[[bytes], bytes]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


# --- Encoding ---------------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64json(value: Any) -> str:
    return b64u(json.dumps(value, separators=(",", ":")).encode())


def segment(token: str, index: int) -> Any:
    return json.loads(b64u_decode(token.split(".")[index]))


def compact(header_segment: str, payload_segment: str, signer: Signer | bytes) -> str:
    """`header.payload.signature`; `signer` signs the ASCII signing input, or is the raw
    signature bytes to attach whatever they are."""
    signing_input = f"{header_segment}.{payload_segment}"
    signature = signer if isinstance(signer, bytes) else signer(signing_input.encode())
    return f"{signing_input}.{b64u(signature)}"


def token(header: Any, claims: Any, signer: Signer | bytes) -> str:
    return compact(b64json(header), b64json(claims), signer)


def claims_for(sub: str, /, **overrides: Any) -> dict[str, Any]:
    """A complete, currently valid claim set (RFC 9068) for `sub`; `overrides` replace claims,
    and an override of `...` (Ellipsis) removes that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": sub,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_hex(16),
        "sid": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not ...}


# --- Signatures -------------------------------------------------------------------------------


def ecdsa_raw(key: ec.EllipticCurvePrivateKey, algorithm: hashes.HashAlgorithm) -> Signer:
    """ECDSA as JWS wants it (RFC 7518 §3.4): r || s, each the curve's byte length."""
    size = (key.curve.key_size + 7) // 8

    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return sign


def ecdsa_der(key: ec.EllipticCurvePrivateKey) -> Signer:
    """A genuine ES256 signature in the DER form of X.509, not JWS's raw form."""
    return lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))


def rs256(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def ps256(key: rsa.RSAPrivateKey) -> Signer:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return lambda data: key.sign(data, pss, hashes.SHA256())


def eddsa(key: ed25519.Ed25519PrivateKey) -> Signer:
    return key.sign


def hmac_sha(alg: str, secret: bytes) -> Signer:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return lambda data: hmac.new(secret, data, digest).digest()


def raw_ecdsa_signature(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def der_ecdsa_signature(r: int, s: int) -> bytes:
    return encode_dss_signature(r, s)


# --- Keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private key with the JWS algorithm it signs with and the kid it is published under."""

    kid: str
    alg: str
    private: PrivateKey

    @classmethod
    def generate(cls, alg: str, kid: str | None = None) -> SigningKey:
        private: PrivateKey
        if alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        elif alg == "ES384":
            private = ec.generate_private_key(ec.SECP384R1())
        elif alg == "ES512":
            private = ec.generate_private_key(ec.SECP521R1())
        elif alg == "ES256K":
            private = ec.generate_private_key(ec.SECP256K1())
        elif alg in ("RS256", "PS256"):
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg in ("Ed25519", "EdDSA"):
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(alg)
        return cls(kid or f"{alg.lower()}-{secrets.token_hex(6)}", alg, private)

    def signer(self, alg: str | None = None) -> Signer:
        """How this key signs under `alg` (default: its own algorithm)."""
        alg = alg or self.alg
        key = self.private
        if isinstance(key, ec.EllipticCurvePrivateKey):
            hash_for: dict[str, hashes.HashAlgorithm] = {
                "ES256": hashes.SHA256(),
                "ES256K": hashes.SHA256(),
                "ES384": hashes.SHA384(),
                "ES512": hashes.SHA512(),
            }
            return ecdsa_raw(key, hash_for[alg])
        if isinstance(key, rsa.RSAPrivateKey):
            return ps256(key) if alg == "PS256" else rs256(key)
        return eddsa(key)

    def sign(self, header: dict[str, Any], claims: Any) -> str:
        """A token signed by this key with `header` completed by its alg/kid/typ unless set."""
        full = {"alg": self.alg, "kid": self.kid, "typ": "at+jwt", **header}
        full = {name: value for name, value in full.items() if value is not ...}
        alg = full.get("alg")
        return token(full, claims, self.signer(alg if isinstance(alg, str) else None))

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK, as a JWKS publishes it (kid, alg, use)."""
        key = self.private.public_key()
        jwk: dict[str, Any]
        if isinstance(key, ec.EllipticCurvePublicKey):
            numbers = key.public_numbers()
            size = (key.curve.key_size + 7) // 8
            crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
            jwk = {
                "kty": "EC",
                "crv": crv.get(key.curve.name, key.curve.name),
                "x": b64u(numbers.x.to_bytes(size, "big")),
                "y": b64u(numbers.y.to_bytes(size, "big")),
            }
        elif isinstance(key, rsa.RSAPublicKey):
            rsa_numbers = key.public_numbers()
            jwk = {
                "kty": "RSA",
                "n": b64u(rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")),
                "e": b64u(rsa_numbers.e.to_bytes(3, "big")),
            }
        else:
            assert isinstance(key, ed25519.Ed25519PublicKey)
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def certificate_der(self) -> bytes:
        """A self-signed X.509 certificate for this key (what an x5c/x5u header would carry)."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        algorithm = None if isinstance(self.private, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        certificate = builder.sign(self.private, algorithm)
        return certificate.public_bytes(serialization.Encoding.DER)


def ec_public_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its JWK."""
    x = int.from_bytes(b64u_decode(jwk["x"]), "big")
    y = int.from_bytes(b64u_decode(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def public_key_secrets(jwk: dict[str, Any]) -> dict[str, bytes]:
    """Every byte string a confused verifier might use as an HMAC secret for this public key
    (CVE-2016-10555 and relatives): the JWK JSON as published and re-serialised, PEM, DER and
    the raw point."""
    key = ec_public_key(jwk)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    return {
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "jwk-json-sorted": json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode(),
        "jwk-required-members": json.dumps(members, separators=(",", ":")).encode(),
        "jwks-document": json.dumps({"keys": [jwk]}, separators=(",", ":")).encode(),
        "pem": pem,
        "pem-without-final-newline": pem.rstrip(b"\n"),
        "der": der,
        "uncompressed-point": point,
    }


# --- A tiny HTTP server: trusted JWKS, or an attacker's key server that must never be asked ---


@dataclass
class KeyServer:
    """Serves fixed documents on loopback and records every request it receives."""

    documents: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def publish(self, path: str, body: bytes, content_type: str = "application/json") -> str:
        self.documents[path] = (content_type, body)
        return f"{self.url}{path}"

    @classmethod
    def running(cls) -> Iterator[KeyServer]:
        server = cls()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                content_type, body = server.documents.get(self.path, ("text/plain", b""))
                self.send_response(200 if self.path in server.documents else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=300")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server._server.shutdown()
            server._server.server_close()
            thread.join(timeout=5)


# --- What a rejection must look like ----------------------------------------------------------


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def assert_token_rejected(response: httpx.Response, code: str = "token_invalid") -> None:
    """401 problem+json with the contract's code and the RFC 6750 challenge; nothing else."""
    assert response.status_code == 401, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="todo-api"'), challenge
    assert 'error="invalid_token"' in challenge, challenge
    # Never data: no task page, no account, no echo of the token.
    assert not {"items", "total", "email", "id"} & body.keys(), body
    assert "Traceback" not in response.text
