"""What this service says about itself to OAuth clients (RFC 9728 protected-resource metadata)."""
