"""Run by test_package.py inside a fresh virtual environment holding only the verifier's wheel
and its dependencies: import it, verify a token, and show what the extras would add. Standard
library, joserfc and the package only (no test helpers: they are not installed there)."""

import asyncio
import importlib
import json
import sys
import sysconfig
import time
from pathlib import Path

from joserfc import jws
from joserfc.jwk import ECKey

import token_verifier
from token_verifier import StaticKeys, TokenVerifier
from token_verifier.metrics import ENABLED


async def main() -> None:
    version = sys.argv[1]
    assert token_verifier.__version__ == version, token_verifier.__version__
    package = Path(token_verifier.__file__).parent
    assert package.parent == Path(sysconfig.get_paths()["purelib"]), package
    assert (package / "py.typed").exists()
    key = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"})
    jwks = {"keys": [{**key.as_dict(private=False), "kid": "k1", "alg": "ES256", "use": "sig"}]}
    now = int(time.time())
    claims = {"iss": "https://auth", "sub": "ada", "aud": "api", "iat": now, "exp": now + 60,
              "sid": "s1", "jti": "j1"}  # fmt: skip
    token = jws.serialize_compact(
        {"alg": "ES256", "kid": "k1", "typ": "at+jwt"}, json.dumps(claims).encode(), key
    )
    verifier = TokenVerifier(StaticKeys(jwks), issuer="https://auth", audience="api")
    verified = await verifier.verify(token)
    for module in ("asgi", "metadata", "client_credentials", "refusals", "jwks"):
        importlib.import_module(f"token_verifier.{module}")
    try:
        importlib.import_module("token_verifier.fastapi")
    except ModuleNotFoundError as missing:
        needs = missing.name
    metrics = "on" if ENABLED else "off"
    print(f"verified {verified.sub}; fastapi adapter needs {needs}; metrics {metrics}")


asyncio.run(main())
