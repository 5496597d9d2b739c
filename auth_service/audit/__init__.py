"""The audit log: every security event, who did it, to whom, from where — never a secret."""
