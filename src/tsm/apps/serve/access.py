"""The optional access token, required as ``?token=`` when the server was started with one."""

from __future__ import annotations

import secrets

TOKEN_HINT = "missing or wrong token: add ?token=THE_TOKEN to the URL"


def token_matches(given: str | None, expected: str | None) -> bool:
    """True when no token is required, or ``given`` is it (compared in constant time)."""
    if expected is None:
        return True
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
