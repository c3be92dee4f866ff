"""The URL shape rules shared by code destinations and webhook targets."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

MAX_URL = 2048


def split_checked(url: str, schemes: tuple[str, ...], empty: str,
                  bad_scheme: str) -> tuple[SplitResult, str, int | None]:
    """``(parts, host, port)`` of an absolute URL with one of ``schemes``, a host and no
    credentials, or ValueError saying why not (``empty``/``bad_scheme`` are the messages)."""
    if not isinstance(url, str) or not url:
        raise ValueError(empty)
    if len(url) > MAX_URL:
        raise ValueError(f"must be at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ValueError("is not a valid URL") from err
    if parts.scheme.lower() not in schemes:
        raise ValueError(bad_scheme)
    host = (parts.hostname or "").rstrip(".")
    if not host or "\\" in parts.netloc:
        raise ValueError("must have a host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not contain credentials")
    return parts, host, port
