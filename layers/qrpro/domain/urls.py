"""The URL rules shared by code destinations and webhook targets; ``check_url``
is the rule of a code's ``url`` and of every URL in its ``routing``.

A URL is checked and normalised once, on write, to the ASCII form that is
stored, returned and later sent as-is (a redirect's ``Location``, a delivery's
target): the host in IDNA punycode, every other non-ASCII character
percent-encoded as UTF-8. ASCII input keeps its spelling. Control, format
(bidirectional overrides, zero-width characters, the soft hyphen) and
surrogate characters are refused anywhere in the URL. The redirect never
parses a URL again: its hot path stays a lookup.

``CheckedUrl.host`` is the host as a resolver sees it (percent-decoded, NFKC,
the ideographic full stops read as dots, IDNA, lower case, no trailing dot):
the form every comparison (the redirect-loop check, SSRF) is made on.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

import idna

from qrpro.config import settings

MAX_URL = 2048
# U+3002 IDEOGRAPHIC FULL STOP, U+FF0E FULLWIDTH FULL STOP, U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP:
# label separators for IDNA (UTS #46), so dots for us.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# Cc control, Cf format (bidi overrides and isolates, zero-width, soft hyphen, BOM), Cs lone surrogates.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_NOT_IN_HOST = frozenset("/\\?#@:%[]<>^|\"` ")
INVISIBLE = "must not contain spaces, control, bidirectional-override or zero-width characters"
BAD_HOST = "must have a valid host"


class CheckedUrl(NamedTuple):
    url: str  # the ASCII form to store and return
    scheme: str  # lower case
    host: str  # the comparison form (see the module's docstring)
    port: int | None


def _has_refused_char(text: str) -> bool:
    if text.isascii():
        return any(c <= " " or c == "\x7f" for c in text)
    return any(c.isspace() or unicodedata.category(c) in _REFUSED_CATEGORIES for c in text)


def _ascii(text: str) -> str:
    """Non-ASCII characters percent-encoded as UTF-8; ASCII (``%`` escapes included) kept as it is."""
    if text.isascii():
        return text
    return "".join(c if c.isascii() else quote(c, safe="") for c in text)


def canonical_host(raw: str) -> str:
    """A URL's host as a resolver sees it, or ValueError. An IPv6 literal loses its brackets (as
    ``urlsplit(...).hostname``) and may not carry a zone."""
    if raw.startswith("["):
        try:
            if "%" in raw or not raw.endswith("]"):
                raise ValueError(BAD_HOST)
            return ipaddress.IPv6Address(raw[1:-1]).compressed
        except ValueError as err:
            raise ValueError(BAD_HOST) from err
    try:
        host = unquote(raw, errors="strict")
    except UnicodeDecodeError as err:
        raise ValueError(BAD_HOST) from err
    if _has_refused_char(host):
        raise ValueError(INVISIBLE)
    host = unicodedata.normalize("NFKC", host.translate(_DOTS)).lower()
    if not host.strip(".") or any(c in _NOT_IN_HOST for c in host):
        raise ValueError(BAD_HOST)
    try:
        if not host.isascii():
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        elif any(label.startswith("xn--") for label in host.split(".")):
            idna.decode(host)  # an A-label must be a valid one
    except (idna.IDNAError, UnicodeError) as err:
        raise ValueError(f"{BAD_HOST} (not a valid international domain name)") from err
    return host.rstrip(".")


def normalise_url(url: str, schemes: tuple[str, ...], empty: str, bad_scheme: str) -> CheckedUrl:
    """An absolute URL with one of ``schemes``, a host and no credentials, normalised to ASCII;
    or ValueError saying why not (``empty``/``bad_scheme`` are the messages for those cases)."""
    if not isinstance(url, str) or not url:
        raise ValueError(empty)
    if len(url) > MAX_URL:
        raise ValueError(f"must be at most {MAX_URL} characters")
    if _has_refused_char(url):
        raise ValueError(INVISIBLE)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ValueError("is not a valid URL") from err
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ValueError(bad_scheme)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not contain credentials")
    prefix = url[:len(parts.scheme) + 3]
    if prefix[len(parts.scheme):] != "://" or "\\" in parts.netloc:
        raise ValueError(BAD_HOST)
    netloc = parts.netloc
    raw_host, port_text = netloc, ""
    if netloc.startswith("["):
        raw_host, _, port_text = netloc.partition("]")
        raw_host += "]"
        port_text = port_text.removeprefix(":")
    elif ":" in netloc:
        raw_host, _, port_text = netloc.partition(":")
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        raise ValueError("is not a valid URL")
    host = canonical_host(raw_host)
    stored_host = raw_host if raw_host.isascii() and "%" not in raw_host else host
    rest = url[len(prefix) + len(netloc):]
    ascii_url = prefix + stored_host + (f":{port_text}" if ":" in netloc.removeprefix(raw_host) else "") + _ascii(rest)
    if len(ascii_url) > MAX_URL:
        raise ValueError(f"must be at most {MAX_URL} characters in its ASCII form (non-ASCII characters "
                         "count as their percent-encoded UTF-8)")
    return CheckedUrl(ascii_url, scheme, host, port)


def is_loopback_host(host: str) -> bool:
    """Whether a canonical host names this machine: ``localhost`` and any IPv4 loopback spelling
    a browser accepts (``127.1``, ``2130706433``, ``0x7f.0.0.1``), ``0.0.0.0``, ``::1``, ``::``."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    if ":" in host:
        ip6 = ipaddress.IPv6Address(host)
        v4 = ip6.ipv4_mapped
        return ip6.is_loopback or ip6.is_unspecified or (v4 is not None and (v4.is_loopback or v4.is_unspecified))
    v4 = whatwg_ipv4(host)
    return v4 is not None and (v4.is_loopback or v4.is_unspecified)


def whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a browser reads in ``host`` (decimal, octal, hex and short forms), or None."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part[:2] in ("0x", "0X"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
        if numbers[-1] < 0:
            return None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _origin(base_url: str) -> tuple[str, int | None] | None:
    """``(canonical host, port or None)`` of a configured origin such as ``https://aqr.net``."""
    if not base_url:
        return None
    if "://" not in base_url:
        base_url = f"http://{base_url}"
    found = normalise_url(base_url.rstrip("/"), ("http", "https"), "", "")
    return found.host, found.port


def _loops(url: CheckedUrl, origin: tuple[str, int | None]) -> bool:
    """Whether ``url`` reaches ``origin``: the same host (a loopback origin: any loopback spelling),
    on any port when the origin names none, else on that port."""
    host, port = origin
    same_host = url.host == host or (is_loopback_host(host) and is_loopback_host(url.host))
    default = 443 if url.scheme == "https" else 80
    return same_host and (port is None or (url.port or default) == port)


def check_url(url: str, short_base: str | None = None) -> str:
    """A destination URL as docs/api.md allows it, in its stored ASCII form; or ValueError saying why.

    ``short_base`` (default: the configured short domain and the redirect origin) is refused, judged
    on the canonical host, so no other spelling of it gets through."""
    checked = normalise_url(url, ("http", "https"), "must be an absolute http or https URL",
                            "must be an absolute http or https URL (no other scheme)")
    bases = [short_base] if short_base is not None else [settings().short_base_url, settings().redirect_origin]
    for base in bases:
        origin = _origin(base)
        if origin is not None and _loops(checked, origin):
            raise ValueError("must not point at the short-link domain (redirect loop)")
    return checked.url
