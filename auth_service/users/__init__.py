"""Accounts: registration, login, the current user, password change."""
