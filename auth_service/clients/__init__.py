"""OAuth 2.0 clients: the registry of internal services and apps, and how they prove who they
are at the token endpoint (`client_secret_basic`, `private_key_jwt`)."""
