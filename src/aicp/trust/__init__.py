"""Trust routing: what kind of request this is, how sensitive, how far to trust it."""
