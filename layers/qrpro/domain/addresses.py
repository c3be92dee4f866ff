"""Which addresses a webhook delivery may connect to (SSRF): only globally
routable ones. The delivery (``data/delivery.py``) resolves a target's host
and connects only to an address these rules accept; a target URL's shape is
checked in ``domain/webhooks.py``. Pure: no I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

_V4_FORBIDDEN = [(ipaddress.IPv4Network(net), why) for net, why in (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)]
_V6_FORBIDDEN = [(ipaddress.IPv6Network(net), why) for net, why in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "reserved"),  # IPv4-compatible (deprecated)
    ("::ffff:0:0:0/96", "reserved"),  # IPv4-translated (SIIT)
    ("64:ff9b:1::/48", "reserved"),  # local-use IPv4/IPv6 translation (RFC 8215): a private network
    ("100::/64", "reserved"),  # discard-only
    ("100:0:0:1::/64", "reserved"),  # dummy prefix (RFC 9780)
    ("2001::/23", "reserved"),  # IETF protocol assignments (Teredo, ORCHID, benchmarking ...)
    ("2001:db8::/32", "reserved"),  # documentation
    ("3fff::/20", "reserved"),  # documentation (RFC 9637)
    ("5f00::/16", "reserved"),  # SRv6 SIDs
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private (site local)"),
    ("ff00::/8", "multicast"),
)]
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# Forms that carry an IPv4 address in their last 32 bits (compatible, mapped, translated, NAT64
# well-known and local-use /96); the address is judged by that IPv4 address too.
_V4_IN_LOW_BITS = [ipaddress.IPv6Network(net) for net in (
    "::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")]
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_6TO4 = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (in the low 32 bits, 6to4, Teredo)."""
    out: list[ipaddress.IPv4Address] = []
    if any(ip in net for net in _V4_IN_LOW_BITS):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _6TO4 and ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip in _TEREDO and ip.teredo is not None:
        out.extend(ip.teredo)  # (server, client)
    return out


def address_problem(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why a delivery must not connect to ``ip`` (``None``: it may).

    Only globally routable addresses pass: explicit tables (not the running Python's
    ``is_global``, whose lists differ between versions), then ``is_global`` as a second
    opinion. IPv6 must be global unicast (2000::/3) outside the special-purpose blocks, or
    an IPv4-mapped or NAT64 (64:ff9b::/96) form of a public IPv4 address; every IPv4
    address an IPv6 address carries is judged too. ``allow_loopback`` (only ``qrpro local``)
    lets exactly 127.0.0.0/8 and ::1 through.
    """
    if allow_loopback and (ip in _LOOPBACK_V4 if isinstance(ip, ipaddress.IPv4Address) else ip == _LOOPBACK_V6):
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        for net, why in _V4_FORBIDDEN:
            if ip in net:
                return why
        if ip == ipaddress.IPv4Address("255.255.255.255"):
            return "reserved"
    else:
        if ip.scope_id:
            return "link-local"
        if ip.is_loopback or ip.is_unspecified:
            return "loopback" if ip.is_loopback else "unspecified"
        for v4 in _embedded_v4(ip):
            inner = address_problem(v4)
            if inner is not None:
                return f"{inner} (IPv4 inside IPv6)"
        if ip in _V4_MAPPED or ip in _NAT64:
            return None  # a public IPv4 address, spelled in IPv6
        for net6, why in _V6_FORBIDDEN:
            if ip in net6:
                return why
        if ip not in _GLOBAL_UNICAST:
            return "reserved"
    if not ip.is_global:
        return "not a public address"
    return None


def parse_ip(text: str) -> IPAddress:
    """An address from getaddrinfo's sockaddr (a zone index stays, and is refused)."""
    return ipaddress.ip_address(text)


def refused_addresses(addresses: Iterable[IPAddress], allow_loopback: bool) -> str | None:
    """The first problem among the addresses a host resolves to: one bad address refuses the target."""
    for ip in addresses:
        why = address_problem(ip, allow_loopback)
        if why is not None:
            return f"must not resolve to a {why} address"
    return None
