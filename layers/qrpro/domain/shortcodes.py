"""The shortcode alphabet and length (docs/api.md section 6), import-light:
the redirect checks every path against them before any AWS call."""

from __future__ import annotations

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SHORTCODE_LEN = 7
_BASE58_CHARS = frozenset(BASE58)


def is_shortcode(text: str) -> bool:
    """Seven Base58 characters: the only paths the redirect looks up."""
    return len(text) == SHORTCODE_LEN and _BASE58_CHARS.issuperset(text)
