"""The revocation list: sessions that ended and subjects cut off, kept as long as an access
token they could affect lives, and served to verifiers so that logout reaches them in
seconds while verification stays local."""
