"""The OAuth 2.0 endpoints under `/oauth/`: token (RFC 6749: refresh_token and
client_credentials grants), introspection (RFC 7662) and revocation (RFC 7009)."""
