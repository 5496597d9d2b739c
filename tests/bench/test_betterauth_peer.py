"""The Better Auth peer's pure parsing: what the bench reads from Node, its source and its
answers. The bench itself is not part of `make test`."""

from __future__ import annotations

import pytest

from tests.bench.betterauth_peer import (
    matched_memory_kib,
    node_major,
    scrypt_parameters,
    session_cookie,
)

# @better-auth/utils 0.5.1, dist/password.node.mjs, as installed by the peer's package-lock.json.
SOURCE = """import { randomBytes, scrypt } from "node:crypto";
//#region src/password.node.ts
const config = {
\tN: 16384,
\tr: 16,
\tp: 1,
\tdkLen: 64
};
function generateKey(password, salt) {
"""


def test_node_major_reads_node_version_output() -> None:
    assert node_major("v20.20.2\n") == 20
    assert node_major("v22.1.0-nightly") == 22
    assert node_major("") is None
    assert node_major("20.1.0") is None
    assert node_major("v20") is None


def test_scrypt_parameters_from_the_source() -> None:
    parameters = scrypt_parameters(SOURCE)
    assert (parameters.n, parameters.r, parameters.p, parameters.key_length) == (16384, 16, 1, 64)
    assert parameters.memory_mib == 32
    assert parameters.describe() == "scrypt N=2^14 r=16 p=1 (32 MiB)"


def test_scrypt_parameters_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="no `const config"):
        scrypt_parameters("export const x = 1;")
    with pytest.raises(ValueError, match="without 'dkLen'"):
        scrypt_parameters("const config = { N: 16384, r: 16, p: 1 };")


def test_matched_memory_scales_and_rounds_to_mebibytes() -> None:
    assert matched_memory_kib(19456, 0.020, 0.100) == 97280
    assert matched_memory_kib(19456, 0.020, 0.020) == 19456
    assert matched_memory_kib(19456, 0.100, 0.001) == 1024  # never below 1 MiB


def test_session_cookie_from_set_cookie() -> None:
    header = "better-auth.session_token=abc.def%3D; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
    assert session_cookie(header) == "better-auth.session_token=abc.def%3D"
    with pytest.raises(ValueError, match="no Better Auth session cookie"):
        session_cookie("other=1; Path=/")
