"""Destination URL rules (docs/api.md section 6): property-based and by example."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrpro.domain.codes import check_url

SHORT = "aqr.net"


@given(st.text(max_size=300))
def test_any_text_is_accepted_only_if_it_follows_the_rules(text: str) -> None:
    try:
        check_url(text, SHORT)
    except ValueError:
        return  # rejected with a message, never another exception
    parts = urlsplit(text)
    assert parts.scheme.lower() in {"http", "https"}
    assert parts.hostname and parts.hostname.rstrip(".").lower() != SHORT
    assert parts.username is None and parts.password is None
    assert len(text) <= 2048 and not any(c.isspace() for c in text)


@settings(max_examples=200)
@given(st.sampled_from(["http", "https", "HTTPS"]),
       st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True),
       st.from_regex(r"(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,30}){0,4}", fullmatch=True))
def test_ordinary_web_urls_are_accepted(scheme: str, host: str, path: str) -> None:
    url = f"{scheme}://{host}{path}"
    if host.rstrip(".") == SHORT:
        return
    assert check_url(url, SHORT) == url


@given(st.sampled_from(["javascript", "data", "file", "vbscript", "ftp", "mailto", "blob", "ws"]), st.text(max_size=50))
def test_other_schemes_are_rejected(scheme: str, rest: str) -> None:
    with pytest.raises(ValueError):
        check_url(f"{scheme}:{rest}", SHORT)


@pytest.mark.parametrize("url", ["https://aqr.net/x", "http://AQR.net", "https://aqr.net.:443/x"])
def test_no_loops_through_the_short_domain(url: str) -> None:
    with pytest.raises(ValueError, match="short-link"):
        check_url(url, SHORT)


def test_the_local_short_host_with_port_is_refused_too() -> None:
    with pytest.raises(ValueError, match="short-link"):
        check_url("http://127.0.0.1:3001/abc", "127.0.0.1:3001")
    assert check_url("http://127.0.0.1:8080/abc", "127.0.0.1:3001")
