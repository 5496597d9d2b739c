"""Signing keys: the encrypted key ring, its rotation schedule and the public JWKS."""
