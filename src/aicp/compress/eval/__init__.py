"""Tokens saved and facts kept on generated conversations: `python -m aicp.compress.eval`."""
