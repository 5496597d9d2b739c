"""Account events: a transactional outbox in the auth database (written in the same
transaction as the change) served in order to internal services, which keep their own cursor
and handle each event at least once."""
