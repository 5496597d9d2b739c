"""Access tokens: issuing them and checking the bearer of a request."""
