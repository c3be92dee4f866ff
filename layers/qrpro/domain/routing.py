"""Where a scan goes: the evaluation of a code's ``routing`` (docs/api.md section 14,
docs/analytics.md "Routing"), once per scan on the redirect's hot path.

Import-light (``urllib.parse`` only, which botocore loads anyway; no ``typing``
at run time) and cheap per call: dictionary lookups and, with ``utm``, one
string join. The routing is
checked and normalised once, on write (``qrpro.domain.routing_model``); here it
is trusted.

The stored shape is the API object, normalised: JSON types only (so it can be
one compact JSON string attribute on the item, read without typed-map
decoding, and one cell of ``codes.csv``), every URL in its ASCII form,
countries in upper case, and a key present only when set::

    {"starts_at": 1767225600, "expires_at": 1769904000, "max_scans": 10000,
     "fallback_url": "https://example.com/ended",
     "rules": [{"if": {"country": ["DE", "AT"], "device": ["mobile"], "os": ["ios"],
                       "from": 1767225600, "until": 1767830400},
                "url": "https://example.de/"}],
     "split": [{"url": "https://example.com/a", "weight": 50},
               {"url": "https://example.com/b", "weight": 50}],
     "utm": {"source": "qr", "medium": "print", "campaign": "spring"}}

``route`` answers ``(status, location, target)``: ``(302, url, target)`` for a
redirect, where ``target`` is what the scan message carries (``default``,
``rule:<i>``, ``split:<i>``, ``fallback``); ``NOT_ACTIVE`` (a 404 page, not
counted) or ``ENDED`` (a 410 page, not counted) otherwise.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

TYPE_CHECKING = False  # typing itself is not imported at run time (mypy reads this block)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

REDIRECT = 302
NOT_ACTIVE = (404, None, None)  # before starts_at: "this code is not active yet"
ENDED = (410, None, None)  # expired or max_scans reached, with no fallback_url
DEFAULT, FALLBACK = "default", "fallback"
UTM_KEYS = ("source", "medium", "campaign", "term", "content")
_UTM_NAMES = tuple((key, "utm_" + key) for key in UTM_KEYS)
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

Outcome = tuple[int, str | None, str | None]


def route(routing: Mapping[str, Any] | None, url: str, now: float, country: str | None, device: str, os: str,
          draw: float, place: Callable[[int], bool] | None = None) -> Outcome:
    """Where this scan goes, in the order of section 14.

    ``now``: unix seconds; ``country``: ISO alpha-2 or None (``XX`` matches no rule); ``device`` and
    ``os``: the classes of ``qrpro.domain.devices``; ``draw``: a uniform random number in [0, 1),
    used only by a split; ``place(max_scans)``: whether this scan has a place under the code's
    scan limit (asked only when the code has one, and only once the clock let the scan through;
    None: it has)."""
    if routing is None:
        return REDIRECT, url, DEFAULT
    starts_at = routing.get("starts_at")
    if starts_at is not None and now < starts_at:
        return NOT_ACTIVE
    expires_at = routing.get("expires_at")
    max_scans = routing.get("max_scans")
    ended = expires_at is not None and now >= expires_at
    if not ended and max_scans is not None and place is not None:
        ended = not place(max_scans)
    if ended:
        fallback = routing.get("fallback_url")
        if fallback is None:
            return ENDED
        return REDIRECT, tag(fallback, routing.get("utm")), FALLBACK
    rules = routing.get("rules")
    if rules:
        for index, rule in enumerate(rules):
            if _holds(rule["if"], now, country, device, os):
                return REDIRECT, tag(rule["url"], routing.get("utm")), f"rule:{index}"
    split = routing.get("split")
    if split:
        index = pick(split, draw)
        return REDIRECT, tag(split[index]["url"], routing.get("utm")), f"split:{index}"
    return REDIRECT, tag(url, routing.get("utm")), DEFAULT


def _holds(cond: Mapping[str, Any], now: float, country: str | None, device: str, os: str) -> bool:
    """Whether every condition of a rule holds (``until`` exclusive)."""
    allowed = cond.get("country")
    if allowed is not None and country not in allowed:
        return False
    allowed = cond.get("device")
    if allowed is not None and device not in allowed:
        return False
    allowed = cond.get("os")
    if allowed is not None and os not in allowed:
        return False
    start = cond.get("from")
    if start is not None and now < start:
        return False
    until = cond.get("until")
    return until is None or now < until


def pick(split: list[Mapping[str, Any]], draw: float) -> int:
    """The index of the entry a uniform ``draw`` in [0, 1) falls on, by weight."""
    point = draw * sum(entry["weight"] for entry in split)
    for index, entry in enumerate(split):
        point -= entry["weight"]
        if point < 0:
            return index
    return len(split) - 1  # draw == 1.0 (or a rounding edge): the last entry


def tag(url: str, utm: Mapping[str, str] | None) -> str:
    """``url`` with ``utm_<key>=<value>`` appended to its query, before its fragment, skipping a
    ``utm_`` parameter the URL already has (any case, percent-encoded or not). Values are
    percent-encoded as UTF-8, so an ASCII ``url`` stays ASCII."""
    if not utm:
        return url
    base, hash_, fragment = url.partition("#")
    path, _, query = base.partition("?")
    present = _names(query) if "utm_" in query.lower() or "%" in query else ()
    added = "&".join([f"{name}={_encode(value)}" for key, name in _UTM_NAMES
                      if (value := utm.get(key)) is not None and name not in present])
    if not added:
        return url
    joiner = "&" if query and not query.endswith("&") else ""
    return f"{path}?{query}{joiner}{added}{hash_}{fragment}"


def _encode(value: str) -> str:
    """A query value percent-encoded as UTF-8 (``quote`` skipped when there is nothing to encode)."""
    return value if _UNRESERVED.issuperset(value) else quote(value, safe="")


def _names(query: str) -> frozenset[str]:
    """The parameter names of a query string, decoded and in lower case."""
    return frozenset(unquote(part.partition("=")[0]).lower() for part in query.split("&"))
