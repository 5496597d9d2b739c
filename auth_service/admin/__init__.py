"""Administration: users (look up, disable, end sessions, reset factors, roles, delete),
clients, and the audit log, for holders of the `admin` role."""
