"""Webhook rules without any network: Standard Webhooks signatures (checked
with the `standardwebhooks` package, not with our own code), secrets and
rotation, the retry schedule, target URLs and the SSRF address rules, and the
resolver/client refusing forbidden targets (``socket.getaddrinfo`` is faked;
no connection is ever opened)."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import time
from typing import Any

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from qrpro.data import delivery
from qrpro.domain import addresses
from qrpro.domain import webhooks as rules

# -- signatures --------------------------------------------------------------------


def test_secret_is_whsec_and_at_least_24_random_bytes() -> None:
    secret = rules.new_secret()
    assert secret.startswith("whsec_")
    raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert len(raw) >= 24
    assert rules.new_secret() != secret
    assert rules.new_secret(lambda n: b"\x01" * n) == "whsec_" + base64.b64encode(b"\x01" * 32).decode()


def test_headers_verify_with_the_standardwebhooks_package() -> None:
    secret = rules.new_secret()
    event = rules.payload("4f1c1f5e-0000-4000-8000-000000000001", "code.created", 1_700_000_000,
                          {"type": "user"}, {"code": {"id": "c1", "url": "https://example.com/é"}})
    body = rules.body(event)
    ts = int(time.time())
    headers = rules.headers(event["id"], ts, body, [secret])
    assert headers["webhook-id"] == event["id"]
    assert headers["webhook-timestamp"] == str(ts)
    assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    assert headers["Content-Type"] == "application/json"
    assert Webhook(secret).verify(body.encode(), headers) == event
    with pytest.raises(WebhookVerificationError):
        Webhook(rules.new_secret()).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("c1", "c2").encode(), headers)


def test_body_is_compact_json_of_the_contract_payload() -> None:
    event = rules.payload("e1", "code.updated", 5, {"type": "team", "team_id": "t1"}, {"code": {"id": "x"}})
    assert event == {"id": "e1", "type": "code.updated", "created_at": 5,
                     "scope": {"type": "team", "team_id": "t1"}, "data": {"code": {"id": "x"}}}
    assert rules.body(event) == json.dumps(event, separators=(",", ":"))


def test_after_rotation_both_secrets_sign_for_24_hours() -> None:
    old, new = rules.new_secret(), rules.new_secret()
    now = int(time.time())
    item = {"secret": new, "previous_secret": old, "previous_until": now + rules.ROTATION_OVERLAP}
    assert rules.signing_secrets(item, now) == [new, old]
    assert rules.signing_secrets(item, now + rules.ROTATION_OVERLAP) == [new]
    body = '{"a":1}'
    headers = rules.headers("msg_1", now, body, rules.signing_secrets(item, now))
    sigs = headers["webhook-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs)
    Webhook(new).verify(body, headers)  # a receiver on either secret accepts
    Webhook(old).verify(body, headers)


# -- bodies --------------------------------------------------------------------------


def test_create_body_validation() -> None:
    ok = rules.WebhookCreate.model_validate({"url": "https://h.example.com/x",
                                             "events": ["code.created", "code.created", "scans.cap_reached"]})
    assert ok.events == ["code.created", "scans.cap_reached"] and ok.description is None
    for bad, field in (({"url": "https://h.example.com", "events": []}, "events"),
                       ({"url": "https://h.example.com", "events": ["ping"]}, "events"),
                       ({"url": "https://h.example.com", "events": ["code.nope"]}, "events"),
                       ({"url": "https://h.example.com", "events": "code.created"}, "events"),
                       ({"url": "ftp://h.example.com", "events": ["code.created"]}, "url"),
                       ({"url": "https://u:p@h.example.com", "events": ["code.created"]}, "url"),
                       ({"url": "https://h.example.com", "events": ["code.created"], "x": 1}, "x")):
        with pytest.raises(ValidationError) as info:
            rules.WebhookCreate.model_validate(bad)
        assert info.value.errors()[0]["loc"][0] == field


def test_patch_body_rejects_nulls_on_required_fields() -> None:
    assert rules.WebhookPatch.model_validate({"active": False}).model_dump(exclude_unset=True) == {"active": False}
    for field in ("url", "events", "active"):
        with pytest.raises(ValidationError):
            rules.WebhookPatch.model_validate({field: None})
    assert rules.WebhookPatch.model_validate({"description": None}).model_dump(exclude_unset=True) == {
        "description": None}


# -- retries -----------------------------------------------------------------------------


def test_retry_schedule_with_jitter() -> None:
    lowest, highest = (lambda a, b: a), (lambda a, b: b)
    assert [rules.retry_delay(n, rand=lambda a, b: 0.0) for n in range(1, 9)] == [
        5, 300, 1800, 7200, 18_000, 36_000, 36_000, None]
    assert rules.retry_delay(2, rand=lowest) == 270 and rules.retry_delay(2, rand=highest) == 330
    assert rules.retry_delay(7, rand=highest) == 39_600 <= rules.MAX_DELAY  # within SQS's 12 h
    assert rules.retry_delay(1, schedule=()) is None
    draws = {rules.retry_delay(3) for _ in range(50)}
    assert len(draws) > 1 and all(d is not None and 1620 <= d <= 1980 for d in draws)


def test_schedule_override_parsing() -> None:
    assert rules.parse_schedule(None) == rules.BACKOFF == rules.parse_schedule("")
    assert rules.parse_schedule("1,2, 3") == (1, 2, 3)
    assert rules.parse_schedule("none") == ()
    with pytest.raises(ValueError):
        rules.parse_schedule("-1")


def test_error_text_is_clipped_to_1_kib() -> None:
    assert rules.clip_error("short") == "short"
    long = "é" * 2000
    clipped = rules.clip_error(long)
    assert len(clipped.encode()) <= 1024 and clipped == "é" * 512


# -- SSRF: address rules -----------------------------------------------------------------------

FORBIDDEN = [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
    ("172.31.255.254", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "link-local (metadata)"),
    ("169.254.0.1", "link-local (metadata)"), ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"), ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("0.0.0.0", "unspecified"),  # noqa: S104
    ("0.1.2.3", "unspecified"), ("192.0.2.1", "reserved"), ("198.18.0.1", "reserved"),
    ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"), ("fc00::1", "private (unique local)"),
    ("fd12:3456::1", "private (unique local)"), ("ff02::1", "multicast"), ("fec0::1", "private (site local)"),
    ("::ffff:127.0.0.1", "loopback (IPv4 inside IPv6)"), ("::ffff:10.0.0.1", "private (IPv4 inside IPv6)"),
    ("::ffff:169.254.169.254", "link-local (metadata) (IPv4 inside IPv6)"),
    ("64:ff9b::a9fe:a9fe", "link-local (metadata) (IPv4 inside IPv6)"),
    ("2002:a00:1::1", "private (IPv4 inside IPv6)"), ("2002:c0a8:101::1", "private (IPv4 inside IPv6)"),
    # Teredo: the client address is stored inverted in the last 32 bits (here 192.168.0.1).
    ("2001:0:4136:e378:8000:63bf:3f57:fffe", "private (IPv4 inside IPv6)"),
    ("::10.0.0.1", "private (IPv4 inside IPv6)"),
    # Issue 16 (6): every IPv6 spelling of an IPv4 address is judged by that address ...
    ("::ffff:0:a9fe:a9fe", "link-local (metadata) (IPv4 inside IPv6)"),  # IPv4-translated (SIIT)
    ("::ffff:0:7f00:1", "loopback (IPv4 inside IPv6)"), ("::ffff:0:808:808", "reserved"),
    ("::ffff:a9fe:a9fe", "link-local (metadata) (IPv4 inside IPv6)"), ("::a9fe:a9fe", "link-local (metadata) "
                                                                                      "(IPv4 inside IPv6)"),
    ("::8.8.8.8", "reserved"),  # IPv4-compatible: deprecated, never routed
    ("64:ff9b::a00:1", "private (IPv4 inside IPv6)"), ("64:ff9b::7f00:1", "loopback (IPv4 inside IPv6)"),
    ("64:ff9b::c0a8:1", "private (IPv4 inside IPv6)"), ("64:ff9b::6440:1", "carrier-grade NAT (IPv4 inside IPv6)"),
    ("64:ff9b:1::a00:1", "private (IPv4 inside IPv6)"),  # local-use NAT64 (RFC 8215) of 10.0.0.1
    ("64:ff9b:1::808:808", "reserved"), ("64:ff9b:1:ffff::808:808", "reserved"),  # local-use: never public
    ("2002:7f00:1::1", "loopback (IPv4 inside IPv6)"),
    ("2002:a9fe:a9fe::1", "link-local (metadata) (IPv4 inside IPv6)"),
    # ... and the special-purpose IPv6 blocks are refused whatever Python's is_global says
    ("3fff::1", "reserved"), ("3fff:fff:ffff::1", "reserved"),  # documentation (RFC 9637)
    ("2001:db8::1", "reserved"), ("2001:db8:ffff::1", "reserved"),  # documentation
    ("2001:2::1", "reserved"), ("2001:20::1", "reserved"), ("2001:1::1", "reserved"),  # IETF assignments
    ("100::1", "reserved"), ("100:0:0:1::1", "reserved"), ("5f00::1", "reserved"),  # discard, dummy, SRv6
    ("4000::1", "reserved"), ("e000::1", "reserved"), ("1::1", "reserved"),  # outside global unicast
    ("fe80::1%eth0", "link-local"),
]


@pytest.mark.parametrize(("address", "why"), FORBIDDEN)
def test_forbidden_addresses(address: str, why: str) -> None:
    assert addresses.address_problem(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     "2a00:1450:4001:80b::200e", "2002:808:808::1", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "2620:4f:8000::1", "2c0f:fb50:4003::1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert addresses.address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.3.2.1", "::1"])
def test_local_mode_adds_loopback(address: str) -> None:
    assert addresses.address_problem(ipaddress.ip_address(address), allow_loopback=True) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "fe80::1",
                                     "fd00::1", "0.0.0.0", "::", "::ffff:127.0.0.1", "224.0.0.1"])  # noqa: S104
def test_local_mode_adds_only_loopback(address: str) -> None:
    assert addresses.address_problem(ipaddress.ip_address(address), allow_loopback=True) is not None


def test_url_shape() -> None:
    assert rules.check_url_shape("https://hooks.example.com/in?x=1", allow_http=False) == (
        "https", "hooks.example.com", 443)
    assert rules.check_url_shape("http://127.0.0.1:8080/x", allow_http=True) == ("http", "127.0.0.1", 8080)
    for bad in ("http://hooks.example.com/", "ftp://x.example.com", "https://", "https://u:p@x.example.com/",
                "https://x.example.com/#frag", "https://x.example.com/ a", "https://x.example.com:99999/",
                "https://x.example.com/" + "a" * 2048):
        with pytest.raises(ValueError):
            rules.check_url_shape(bad, allow_http=False)


# -- SSRF: resolution and the client, with a fake resolver (no traffic) --------------------


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> list[str]:
    """``socket.getaddrinfo`` answering ``table``; returns the log of names asked."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for addr in table[host]:
            if ":" in addr:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (addr, int(port), 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, int(port))))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(("address", "why"), FORBIDDEN)
def test_hostname_resolving_to_a_forbidden_range_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                              no_connections: None, address: str,
                                                              why: str) -> None:
    asked = fake_dns(monkeypatch, {"hooks.example.com": [address]})
    with pytest.raises(delivery.TargetRefused, match="must not resolve to"):
        delivery.check_target("https://hooks.example.com/in", allow_loopback=False)
    # At delivery: a failed attempt with the reason, no connection, no address in the text.
    attempt = delivery.post("https://hooks.example.com/in", b"{}", {}, allow_loopback=False)
    assert attempt.status_code is None and not attempt.ok
    assert attempt.error == f"target refused: must not resolve to a {why} address"
    assert address not in (attempt.error or "")
    assert asked == ["hooks.example.com", "hooks.example.com"]


def test_one_bad_address_among_good_ones_refuses_the_target(monkeypatch: pytest.MonkeyPatch,
                                                             no_connections: None) -> None:
    fake_dns(monkeypatch, {"mixed.example.com": ["93.184.215.14", "10.0.0.7"],
                           "good.example.com": ["93.184.215.14", "2606:4700:4700::1111"]})
    with pytest.raises(delivery.TargetRefused, match="private"):
        delivery.check_target("https://mixed.example.com/", allow_loopback=False)
    assert delivery.check_target("https://good.example.com/", allow_loopback=False) == (
        "https", "good.example.com", 443, ["93.184.215.14", "2606:4700:4700::1111"])


def test_unresolvable_and_ip_literal_targets(monkeypatch: pytest.MonkeyPatch, no_connections: None) -> None:
    fake_dns(monkeypatch, {"169.254.169.254": ["169.254.169.254"], "2130706433": ["127.0.0.1"],
                           "[::1]": ["::1"], "::1": ["::1"]})
    with pytest.raises(delivery.TargetRefused, match="does not resolve"):
        delivery.check_target("https://nowhere.example.com/", allow_loopback=False)
    with pytest.raises(delivery.TargetRefused, match="metadata"):
        delivery.check_target("https://169.254.169.254/latest/meta-data/", allow_loopback=False)
    with pytest.raises(delivery.TargetRefused, match="loopback"):  # decimal form of 127.0.0.1
        delivery.check_target("https://2130706433/", allow_loopback=False)
    with pytest.raises(delivery.TargetRefused, match="loopback"):
        delivery.check_target("https://[::1]:8443/", allow_loopback=False)


def test_http_and_loopback_only_in_local_mode(monkeypatch: pytest.MonkeyPatch, no_connections: None) -> None:
    fake_dns(monkeypatch, {"localhost": ["127.0.0.1", "::1"], "intranet.example.com": ["192.168.0.10"],
                           "public.example.com": ["93.184.215.14"]})
    with pytest.raises(delivery.TargetRefused, match="https"):
        delivery.check_target("http://public.example.com/", allow_loopback=False)
    with pytest.raises(delivery.TargetRefused, match="loopback"):
        delivery.check_target("https://localhost/", allow_loopback=False)
    assert delivery.check_target("http://localhost:9000/h", allow_loopback=True)[3] == ["127.0.0.1", "::1"]
    with pytest.raises(delivery.TargetRefused, match="private"):
        delivery.check_target("http://intranet.example.com/", allow_loopback=True)


# -- secrets sealed at rest ------------------------------------------------------------

def test_sealing_round_trips_and_binds_to_its_context() -> None:
    from qrpro.domain import sealing

    key, other_key = sealing.key_from("k" * 40), sealing.key_from("j" * 40)
    secret = rules.new_secret()
    sealed = sealing.seal(key, secret, "webhook:USER#a:w1")
    assert sealed.startswith("v1:") and secret not in sealed
    assert sealing.seal(key, secret, "webhook:USER#a:w1") != sealed  # a fresh nonce every time
    assert sealing.unseal(key, sealed, "webhook:USER#a:w1") == secret
    version, body = sealed.split(":", 1)
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    here = "webhook:USER#a:w1"
    for value, k, context in [(sealed, key, "webhook:USER#b:w1"), (sealed, other_key, here),
                              (f"{version}:{flipped}", key, here), ("v0:" + body, key, here),
                              ("v1:not base64!", key, here)]:
        with pytest.raises(sealing.SealError):
            sealing.unseal(k, value, context)
    with pytest.raises(ValueError, match="at least 32"):
        sealing.key_from("short")
