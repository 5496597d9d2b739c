"""Following the auth service's account events: when an account is deleted, its tasks go."""
