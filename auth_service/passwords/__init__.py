"""Password hashing (Argon2id, bounded worker pool) and the password policy."""
