"""Routing (docs/api.md section 14): the per-scan evaluation in its order, UTM tagging, and the
validation of the routing object with its stored form."""

from __future__ import annotations

import json
import random
from typing import Any, get_args
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from qrpro.api.errors import field_path
from qrpro.domain.bodies import RequestBody
from qrpro.domain.devices import DEVICES, OSES
from qrpro.domain.routing import ENDED, NOT_ACTIVE, pick, route, tag
from qrpro.domain.routing_model import EXAMPLE, DeviceClass, OsClass, Routing, RoutingField
from qrpro.domain.urls import canonical_host, check_url

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
URL = "https://example.com/landing"

FULL: dict[str, Any] = {
    "starts_at": T0,
    "expires_at": T0 + 30 * DAY,
    "max_scans": 1000,
    "fallback_url": "https://example.com/ended",
    "rules": [
        {"if": {"country": ["DE", "AT", "CH"]}, "url": "https://example.de/"},
        {"if": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"},
        {"if": {"os": ["android"], "device": ["tablet"]}, "url": "https://play.google.com/tablet"},
        {"if": {"device": ["desktop"], "from": T0 + DAY, "until": T0 + 2 * DAY}, "url": "https://example.com/desk"},
    ],
    "split": [{"url": "https://example.com/a", "weight": 30}, {"url": "https://example.com/b", "weight": 70}],
}


def scan(routing: dict[str, Any] | None = FULL, *, now: float = T0 + 5, country: str | None = "US",
         device: str = "mobile", os: str = "other", scans: int = 0, draw: float = 0.0) -> Any:
    return route(routing, URL, now, country, device, os, draw, lambda limit: scans < limit)


# -- the evaluation, step by step ----------------------------------------------------------------------

@pytest.mark.parametrize(("case", "kwargs", "expected"), [
    # 0. no routing: the code's url, untouched
    ("no routing", {"routing": None}, (302, URL, "default")),
    # 1. before starts_at: a 404 page, whatever else matches
    ("before start", {"now": T0 - 1, "country": "DE"}, NOT_ACTIVE),
    ("at start", {"now": T0, "country": "DE"}, (302, "https://example.de/", "rule:0")),
    # 2. at or after expires_at, or max_scans reached: the fallback (before any rule)
    ("at expiry", {"now": T0 + 30 * DAY, "country": "DE"}, (302, "https://example.com/ended", "fallback")),
    ("just before expiry", {"now": T0 + 30 * DAY - 1, "country": "DE"}, (302, "https://example.de/", "rule:0")),
    ("max_scans reached", {"scans": 1000, "country": "DE"}, (302, "https://example.com/ended", "fallback")),
    ("one scan left", {"scans": 999, "country": "DE"}, (302, "https://example.de/", "rule:0")),
    ("ended without fallback", {"routing": {"expires_at": T0}, "now": T0}, ENDED),
    ("cap without fallback", {"routing": {"max_scans": 5}, "scans": 7}, ENDED),
    # 3. the first rule whose every condition holds
    ("country rule", {"country": "AT", "os": "ios"}, (302, "https://example.de/", "rule:0")),
    ("os rule", {"country": "US", "os": "ios"}, (302, "https://apps.apple.com/app/id1", "rule:1")),
    ("all conditions", {"os": "android", "device": "tablet"}, (302, "https://play.google.com/tablet", "rule:2")),
    ("one condition fails", {"os": "android", "device": "mobile"}, (302, "https://example.com/a", "split:0")),
    ("no country", {"country": None}, (302, "https://example.com/a", "split:0")),
    ("window open", {"device": "desktop", "now": T0 + DAY}, (302, "https://example.com/desk", "rule:3")),
    ("window: until exclusive", {"device": "desktop", "now": T0 + 2 * DAY}, (302, "https://example.com/a", "split:0")),
    ("window not yet", {"device": "desktop", "now": T0 + DAY - 1}, (302, "https://example.com/a", "split:0")),
    # 4. the split, by weight
    ("split low draw", {"draw": 0.29}, (302, "https://example.com/a", "split:0")),
    ("split boundary", {"draw": 0.30}, (302, "https://example.com/b", "split:1")),
    ("split high draw", {"draw": 0.9999}, (302, "https://example.com/b", "split:1")),
    # 5. otherwise the code's url
    ("default", {"routing": {"rules": FULL["rules"]}}, (302, URL, "default")),
    ("only a schedule", {"routing": {"starts_at": T0, "expires_at": T0 + DAY}}, (302, URL, "default")),
])
def test_the_order_of_section_14(case: str, kwargs: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert scan(**kwargs) == expected, case


def test_utm_tags_whatever_url_the_scan_goes_to() -> None:
    utm = {"utm": {"source": "qr", "medium": "print", "campaign": "spring"}}
    tagged = "utm_source=qr&utm_medium=print&utm_campaign=spring"
    assert scan({**FULL, **utm}, country="DE") == (302, f"https://example.de/?{tagged}", "rule:0")
    assert scan({**FULL, **utm}, scans=1000) == (302, f"https://example.com/ended?{tagged}", "fallback")
    assert scan({**FULL, **utm}, draw=0.5) == (302, f"https://example.com/b?{tagged}", "split:1")
    assert scan(utm) == (302, f"{URL}?{tagged}", "default")
    assert scan({**utm, "expires_at": T0}) == ENDED


@pytest.mark.parametrize(("url", "utm", "expected"), [
    ("https://x.com/p", {"source": "qr"}, "https://x.com/p?utm_source=qr"),
    ("https://x.com", {"source": "qr"}, "https://x.com?utm_source=qr"),
    ("https://x.com/p?a=1", {"source": "qr"}, "https://x.com/p?a=1&utm_source=qr"),
    ("https://x.com/p?a=1&", {"source": "qr"}, "https://x.com/p?a=1&utm_source=qr"),
    ("https://x.com/p?", {"source": "qr"}, "https://x.com/p?utm_source=qr"),
    ("https://x.com/p#top", {"source": "qr"}, "https://x.com/p?utm_source=qr#top"),
    ("https://x.com/p?a=1#s?b=2", {"source": "qr"}, "https://x.com/p?a=1&utm_source=qr#s?b=2"),
    ("https://x.com/#/route?x=1", {"medium": "print"}, "https://x.com/?utm_medium=print#/route?x=1"),
    # never overriding a utm_ parameter the URL has (in any spelling), adding the others
    ("https://x.com/?utm_source=web&a=1", {"source": "qr", "medium": "print"},
     "https://x.com/?utm_source=web&a=1&utm_medium=print"),
    ("https://x.com/?UTM_Source=web", {"source": "qr"}, "https://x.com/?UTM_Source=web"),
    ("https://x.com/?utm%5Fsource=web", {"source": "qr"}, "https://x.com/?utm%5Fsource=web"),
    ("https://x.com/?utm_source", {"source": "qr"}, "https://x.com/?utm_source"),
    ("https://x.com/?my_utm_source=1", {"source": "qr"}, "https://x.com/?my_utm_source=1&utm_source=qr"),
    # values percent-encoded as UTF-8, in the fixed key order
    ("https://x.com/", {"content": "a&b=c", "campaign": "Frühling 2026", "term": "100%", "source": "q r"},
     "https://x.com/?utm_source=q%20r&utm_campaign=Fr%C3%BChling%202026&utm_term=100%25&utm_content=a%26b%3Dc"),
    ("https://x.com/", None, "https://x.com/"),
    ("https://x.com/", {}, "https://x.com/"),
])
def test_utm_merging_keeps_query_and_fragment(url: str, utm: dict[str, str] | None, expected: str) -> None:
    assert tag(url, utm) == expected
    assert expected.isascii()


def test_a_split_follows_its_weights_over_a_seeded_draw() -> None:
    split = [{"url": "https://x.com/a", "weight": 20}, {"url": "https://x.com/b", "weight": 50},
             {"url": "https://x.com/c", "weight": 30}]
    rng = random.Random(18)
    n = 20_000
    counts = [0, 0, 0]
    for _ in range(n):
        counts[pick(split, rng.random())] += 1
    for count, entry in zip(counts, split, strict=True):
        p = entry["weight"] / 100
        sigma = (n * p * (1 - p)) ** 0.5
        assert abs(count - n * p) < 5 * sigma, counts  # 5 sigma: a seeded draw, but a fair bound anyway
    assert [pick(split, d) for d in (0.0, 0.1999, 0.2, 0.6999, 0.7, 0.99999, 1.0)] == [0, 0, 1, 1, 2, 2, 2]


def test_the_model_allows_exactly_the_classes_the_redirect_derives() -> None:
    assert get_args(DeviceClass.__value__) == DEVICES
    assert get_args(OsClass.__value__) == OSES


# -- validation -----------------------------------------------------------------------------------------

class Body(RequestBody):
    routing: RoutingField = None


def problem(routing: Any) -> tuple[str, str]:
    """(field path, message) of the first error, as the API reports it."""
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"routing": routing})
    first = caught.value.errors()[0]
    return field_path(first["loc"]), first["msg"]


@pytest.mark.parametrize("example", [EXAMPLE, {**FULL, "utm": {"term": "Frühling 2026", "content": "a&b"}}])
def test_examples_are_valid_and_round_trip(example: dict[str, Any]) -> None:
    routing = Routing.model_validate(example)
    assert routing.to_stored() == example
    assert Routing.from_stored(routing.to_stored()) == routing
    assert Routing.from_cell(routing.to_cell()) == routing
    assert json.loads(routing.to_cell()) == example
    assert Body.model_validate({"routing": routing.to_cell()}).routing == routing  # the codes.csv cell
    assert Body.model_validate({"routing": ""}).routing is None
    assert Routing.from_cell("") is None


def test_stored_form_is_normalised() -> None:
    routing = Routing.model_validate({
        "rules": [{"if": {"country": ["de", " at "]}, "url": "https://bücher.example/straße"}],
        "split": [{"url": "https://例え.jp/a", "weight": 50}, {"url": "https://x.com/b", "weight": 50}],
        "starts_at": None, "utm": {"source": "qr", "term": None}})
    assert routing.to_stored() == {
        "rules": [{"if": {"country": ["DE", "AT"]}, "url": "https://xn--bcher-kva.example/stra%C3%9Fe"}],
        "split": [{"url": "https://xn--r8jz45g.jp/a", "weight": 50}, {"url": "https://x.com/b", "weight": 50}],
        "utm": {"source": "qr"}}
    assert Routing.model_validate({"utm": {"source": "qr"}, "rules": []}).to_stored() == {"utm": {"source": "qr"}}


RULE = {"if": {"os": ["ios"]}, "url": "https://x.com/"}
SPLIT = [{"url": "https://x.com/a", "weight": 50}, {"url": "https://x.com/b", "weight": 50}]


@pytest.mark.parametrize(("routing", "field", "message"), [
    ({}, "routing", "set at least one of"),
    ({"expires": 5}, "routing.expires", "Extra inputs are not permitted"),
    ("{not json", "routing", "must be a JSON object"),
    ([RULE], "routing", "valid dictionary"),
    ({"starts_at": "1767225600"}, "routing.starts_at", "valid integer"),
    ({"starts_at": True}, "routing.starts_at", "valid integer"),
    ({"starts_at": -1}, "routing.starts_at", "greater than or equal to 0"),
    ({"starts_at": T0, "expires_at": T0}, "routing.expires_at", "must be after starts_at"),
    ({"max_scans": 0}, "routing.max_scans", "greater than or equal to 1"),
    ({"max_scans": 10**9 + 1}, "routing.max_scans", "less than or equal to 1000000000"),
    ({"fallback_url": "https://x.com/"}, "routing.fallback_url", "applies only with expires_at or max_scans"),
    ({"max_scans": 5, "fallback_url": "javascript:alert(1)"}, "routing.fallback_url", "http or https"),
    ({"max_scans": 5, "fallback_url": "https://aqr.net/abcdefg"}, "routing.fallback_url", "redirect loop"),
    ({"max_scans": 5, "fallback_url": "https://AQR\uff0eNET/x"}, "routing.fallback_url", "redirect loop"),
    ({"rules": [RULE, RULE, {"if": {"os": ["windows"]}, "url": "https://x.com/"}]}, "routing.rules[2].if.os[0]",
     "Input should be 'ios', 'android' or 'other'"),
    ({"rules": [{"if": {"os": "ios"}, "url": "https://x.com/"}]}, "routing.rules[0].if.os", "valid list"),
    ({"rules": [{"if": {"os": []}, "url": "https://x.com/"}]}, "routing.rules[0].if.os", "at least 1 item"),
    ({"rules": [{"if": {"device": ["phone"]}, "url": "https://x.com/"}]}, "routing.rules[0].if.device[0]",
     "'mobile', 'tablet', 'desktop' or 'unknown'"),
    ({"rules": [{"if": {"country": ["DE", "Germany"]}, "url": "https://x.com/"}]},
     "routing.rules[0].if.country[1]", "ISO 3166-1 alpha-2"),
    ({"rules": [{"if": {"country": ["XX"]}, "url": "https://x.com/"}]}, "routing.rules[0].if.country[0]",
     "ISO 3166-1 alpha-2"),
    ({"rules": [{"if": {"country": ["DE"] * 51}, "url": "https://x.com/"}]}, "routing.rules[0].if.country",
     "at most 50 items"),
    ({"rules": [{"if": {"from": T0, "until": T0}, "url": "https://x.com/"}]}, "routing.rules[0].if.until",
     "must be after `from`"),
    ({"rules": [{"if": {}, "url": "https://x.com/"}]}, "routing.rules[0].if", "at least one condition"),
    ({"rules": [{"if": {"os": ["ios"], "browser": ["x"]}, "url": "https://x.com/"}]},
     "routing.rules[0].if.browser", "Extra inputs are not permitted"),
    ({"rules": [{"url": "https://x.com/"}]}, "routing.rules[0].if", "Field required"),
    ({"rules": [{"if": {"os": ["ios"]}}]}, "routing.rules[0].url", "Field required"),
    ({"rules": [{"if": {"os": ["ios"]}, "url": "http://user:pw@x.com/"}]}, "routing.rules[0].url",
     "credentials"),
    ({"rules": [RULE] * 21}, "routing.rules", "at most 20 items"),
    ({"split": SPLIT[:1]}, "routing.split", "at least 2 items"),
    ({"split": SPLIT * 6}, "routing.split", "at most 10 items"),
    ({"split": [SPLIT[0], {**SPLIT[1], "weight": 40}]}, "routing.split", "must sum to 100 (they sum to 90)"),
    ({"split": [SPLIT[0], {**SPLIT[1], "weight": 0}]}, "routing.split[1].weight", "greater than or equal to 1"),
    ({"split": [SPLIT[0], {**SPLIT[1], "weight": 50.0}]}, "routing.split[1].weight", "valid integer"),
    ({"split": [SPLIT[0], {**SPLIT[1], "url": "https://x.com/\u202e"}]}, "routing.split[1].url",
     "bidirectional-override"),
    ({"utm": {}}, "routing.utm", "set at least one of source, medium, campaign, term, content"),
    ({"utm": {"id": "x"}}, "routing.utm.id", "Extra inputs are not permitted"),
    ({"utm": {"source": ""}}, "routing.utm.source", "at least 1 character"),
    ({"utm": {"source": "x" * 101}}, "routing.utm.source", "at most 100 characters"),
    ({"utm": {"campaign": "a\u200bb"}}, "routing.utm.campaign", "zero-width"),
    ({"utm": {"campaign": "a\nb"}}, "routing.utm.campaign", "control"),
])
def test_each_error_names_its_field(routing: Any, field: str, message: str) -> None:
    got_field, got_message = problem(routing)
    assert (got_field, message in got_message) == (field, True), got_message


# -- properties ------------------------------------------------------------------------------------------

SHORT = "aqr.net"
# Any printable text in path, query and fragment (letters of every script, "?", "#", "&", "=", "%" ...).
_TEXT = st.text(st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S")), max_size=30)
_HOSTS = ["example.com", "bücher.example", "例え.jp", "127.0.0.1", "xn--bcher-kva.example", "x.com:8443",
          "aqr.net", "AQR.NET", "aqr\u3002net", "\uff41qr.net"]  # the last four: the short domain (refused)
_URLS = st.builds(lambda host, path, query, frag: f"https://{host}/{path}?{query}#{frag}",
                  st.sampled_from(_HOSTS), _TEXT, _TEXT, _TEXT)
_UTM = st.dictionaries(st.sampled_from(["source", "medium", "campaign", "term", "content"]),
                       st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
                               min_size=1, max_size=20), min_size=1)


@settings(max_examples=200, deadline=None)
@given(url=_URLS, rule_url=_URLS, split_url=_URLS, utm=_UTM, draw=st.floats(0, 1, exclude_max=True),
       country=st.sampled_from(["DE", "US", None]), now=st.integers(T0 - 10, T0 + 10), with_split=st.booleans())
def test_routing_never_yields_a_non_ascii_or_loop_url(url: str, rule_url: str, split_url: str, utm: dict[str, str],
                                                      draw: float, country: str | None, now: int,
                                                      with_split: bool) -> None:
    raw: dict[str, Any] = {"starts_at": T0 - 5, "expires_at": T0 + 5, "fallback_url": rule_url, "utm": utm,
                           "rules": [{"if": {"country": ["DE"]}, "url": rule_url}]}
    if with_split:
        raw["split"] = [{"url": split_url, "weight": 60}, {"url": url, "weight": 40}]
    try:
        stored = Routing.model_validate(raw).to_stored()
        code_url = check_url(url)
    except ValueError:  # ValidationError included: refused on write, with a reason
        event("refused on write")
        return
    status, location, target = route(stored, code_url, now, country, "mobile", "other", draw)
    event(f"{status} {(target or '').partition(':')[0]}")
    if status != 302:
        assert location is None and target is None
        return
    assert location is not None and location.isascii(), location
    assert not any(ord(c) <= 32 or ord(c) == 127 for c in location), location
    parts = urlsplit(location)
    assert parts.hostname and canonical_host(parts.hostname) != SHORT
    names = {unquote(part.partition("=")[0]).lower() for part in parts.query.split("&")}
    assert names >= {f"utm_{key}" for key in utm}, location  # added, or the URL's own kept
