"""Refresh sessions: rotation, reuse detection, logout, session management."""
