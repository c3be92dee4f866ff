"""Destination URL rules (docs/api.md section 6): property-based and by example."""

from __future__ import annotations

import http.client
import re
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.redirect.handler import redirect
from qrpro.domain.urls import canonical_host, check_url

SHORT = "aqr.net"


def assert_valid_location(stored: str) -> None:
    """What the redirect sends is a header value every HTTP stack writes: ASCII, no control characters."""
    location = redirect(stored)["headers"]["Location"]
    assert location == stored and location.isascii(), location
    assert not http.client._is_illegal_header_value(location.encode("ascii"))  # type: ignore[attr-defined]
    assert not any(ord(c) < 33 or ord(c) == 127 for c in location), location


@given(st.text(max_size=300))
def test_any_text_is_accepted_only_if_it_follows_the_rules(text: str) -> None:
    try:
        stored = check_url(text, SHORT)
    except ValueError:
        return  # rejected with a message, never another exception
    parts = urlsplit(stored)
    assert parts.scheme.lower() in {"http", "https"}
    assert parts.hostname and canonical_host(parts.hostname) != SHORT
    assert parts.username is None and parts.password is None
    assert len(stored) <= 2048
    assert_valid_location(stored)


# Hosts and paths in any script: letters, marks and digits of every category, the dot look-alikes.
_LABEL = st.text(st.characters(categories=("Ll", "Lu", "Lo", "Mn", "Nd")), min_size=1, max_size=12)
_HOST = st.lists(_LABEL, min_size=1, max_size=3).map(".".join) | st.just("日本.example")
_ANY = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=300)
@given(st.sampled_from(["http", "https"]), _HOST, st.sampled_from([".com", "\u3002com", "\uff0ecom", ".рф"]),
       _ANY, _ANY, _ANY)
def test_every_stored_unicode_url_yields_a_valid_ascii_location(scheme: str, host: str, tld: str, path: str,
                                                                  query: str, fragment: str) -> None:
    url = f"{scheme}://{host}{tld}/{path}?{query}#{fragment}"
    try:
        stored = check_url(url, SHORT)
    except ValueError as err:
        assert str(err)  # refused, with a reason (an invalid IDN, an invisible character, too long)
        return
    assert_valid_location(stored)
    parts = urlsplit(stored)
    assert parts.hostname == canonical_host(parts.hostname or "")  # already in its canonical form
    # only the host changed spelling: the rest means the same once decoded
    assert unquote(stored.split(parts.netloc, 1)[1]) == unquote(url.split(host + tld, 1)[1])


@pytest.mark.parametrize(("url", "stored"), [
    ("https://example.com/日本", "https://example.com/%E6%97%A5%E6%9C%AC"),
    ("https://пример.рф/путь?q=да#ф", "https://xn--e1afmkfd.xn--p1ai/%D0%BF%D1%83%D1%82%D1%8C?q=%D0%B4%D0%B0#%D1%84"),
    ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
    ("https://faß.de/", "https://xn--fa-hia.de/"),  # UTS #46 non-transitional, as browsers
    ("https://例え\u3002テスト/a", "https://xn--r8jz45g.xn--zckzah/a"),
    ("https://%E6%97%A5%E6%9C%AC.jp/x", "https://xn--wgv71a.jp/x"),
    ("https://Example.COM/Already%20Encoded?x=%E2%82%AC", "https://Example.COM/Already%20Encoded?x=%E2%82%AC"),
    ("http://[2001:4860::8888]:8080/é", "http://[2001:4860::8888]:8080/%C3%A9"),
])
def test_international_urls_are_stored_in_their_ascii_form(url: str, stored: str) -> None:
    assert check_url(url, SHORT) == stored
    assert_valid_location(stored)


@pytest.mark.parametrize("url", [
    "https://example.com/a\u200bb", "https://exa\u200bmple.com/", "https://example.com/\u202egnp.exe",
    "https://example.com/\u2066x\u2069", "https://example.com/\u200e", "https://example.com/\ufeff",
    "https://example.com/\u200d", "https://example.com/\x85", "https://example.com/\x9b",
    "https://example.com/\ud800", "https://exa%E2%80%8Bmple.com/", "https://example.com/a\u2028b",
    "https://xn--aqr.net/", "https://exa%FFmple.com/", "https://-b\u00e4d-.example/",
])
def test_invisible_control_and_bidi_characters_and_broken_hosts_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url, SHORT)


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


@pytest.mark.parametrize("url", [
    "https://aqr.net/x", "http://AQR.net", "https://aqr.net.:443/x", "https://aqr.net:8443/x",
    # other spellings of the same host (issue 16): percent-encoded, full-width, ideographic dots, IDNA
    "https://aqr%2enet/x", "https://%61qr.net/x", "https://\uff41\uff51\uff52.net/x", "https://aqr\u3002net/x", "https://aqr\uff0enet/x",
    "https://aqr\uff61net/x", "https://AQR%2ENET./x", "https://\uff21\uff31\uff32\uff0e\uff2e\uff25\uff34/x", "https://aqr.net%2e/x",
])
def test_no_loops_through_the_short_domain(url: str) -> None:
    with pytest.raises(ValueError, match="short-link"):
        check_url(url, SHORT)


@pytest.mark.parametrize("url", ["https://a\u00adqr.net/x", "https://a%C2%ADqr.net/x", "https://aqr\u200b.net/x"])
def test_invisible_spellings_of_the_short_domain_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="zero-width"):
        check_url(url, SHORT)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:3001/abc", "http://localhost:3001/abc", "http://LOCALHOST.:3001/", "http://app.localhost:3001/",
    "http://127.1:3001/", "http://2130706433:3001/", "http://0x7f.0.0.1:3001/", "http://0177.0.0.1:3001/",
    "http://127.0.0.2:3001/", "http://0.0.0.0:3001/", "http://[::1]:3001/", "http://[::ffff:127.0.0.1]:3001/",
    "http://%31%32%37.0.0.1:3001/", "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:3001/",
])
def test_the_local_redirect_origin_is_refused_in_every_loopback_spelling(url: str) -> None:
    with pytest.raises(ValueError, match="short-link"):
        check_url(url, "http://127.0.0.1:3001")


def test_the_local_short_host_with_port_is_refused_too() -> None:
    with pytest.raises(ValueError, match="short-link"):
        check_url("http://127.0.0.1:3001/abc", "127.0.0.1:3001")
    assert check_url("http://127.0.0.1:8080/abc", "127.0.0.1:3001")
    assert check_url("http://localhost:3000/abc", "127.0.0.1:3001")


def test_the_configured_redirect_origin_is_refused_besides_the_short_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    from qrpro.config import settings

    monkeypatch.setenv("SHORT_BASE_URL", "https://aqr.net")
    monkeypatch.setenv("REDIRECT_ORIGIN", "http://127.0.0.1:3999")
    settings.cache_clear()
    try:
        for url in ("https://aqr%2Enet/x", "http://localhost:3999/x"):
            with pytest.raises(ValueError, match="short-link"):
                check_url(url)
        assert re.match(r"^http://localhost:4000/x$", check_url("http://localhost:4000/x"))
    finally:
        monkeypatch.delenv("REDIRECT_ORIGIN")
        settings.cache_clear()
