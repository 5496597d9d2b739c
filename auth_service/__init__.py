"""The auth service: identities, passwords, signing keys, access tokens, refresh sessions."""
