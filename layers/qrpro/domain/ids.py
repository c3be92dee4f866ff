"""Our object ids (codes, groups, webhooks, keys, teams, users): lower-case UUID
strings. Import-light (stdlib only), for the authorizer's path too."""

from __future__ import annotations

import re

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_id(value: str | None) -> bool:
    """Whether ``value`` can be one of our ids. Anything else cannot name an
    object: callers answer 404 without a read."""
    return bool(value) and UUID_RE.match(value or "") is not None
