"""Privacy promises, checked where they could break: after API calls, failed
calls and scans carrying a client address and a User-Agent, no table item and
no log line of the stack holds an IP address, the User-Agent, a raw key or a
webhook secret in the clear. The code is routed by country and OS (section 14):
the redirect reads the User-Agent's classes for it, and keeps none of it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3

from tests.e2e.conftest import Stack
from tests.e2e.test_gateway_hygiene import raw
from tests.e2e.test_redirect import set_routing

# Documentation-range address (RFC 5737) and a marked UA: header values only, never contacted.
CLIENT_IP = "198.51.100.23"
USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) PrivacyProbe/7.7 Mobile/15E148"
HEADERS = {"User-Agent": USER_AGENT, "X-Forwarded-For": CLIENT_IP, "X-Real-Ip": CLIENT_IP,
           "CloudFront-Viewer-Address": f"{CLIENT_IP}:50123", "Referer": "https://referrer.example/probe",
           "CloudFront-Viewer-Country": "DE", "Cookie": "session=probe-cookie"}


def all_items(stack: Stack) -> str:
    info = json.loads((stack.data_dir / "local.json").read_text())
    client = boto3.client("dynamodb", endpoint_url=info["endpoints"]["dynamodb"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    dump: list[Any] = []
    for table in (info["table"], info["idempotency_table"]):
        pages = client.get_paginator("scan").paginate(TableName=table)
        dump += [item for page in pages for item in page["Items"]]
    return json.dumps(dump)


def test_no_ip_user_agent_or_raw_key_is_stored_or_logged(stack: Stack) -> None:
    acct = stack.account("team")
    key = acct["api_key"]
    code = stack.api("POST", "/api/codes", key, json_body={"url": "https://example.com/p"},
                     headers={**HEADERS, "Idempotency-Key": "privacy-1"}).json()
    set_routing(stack, acct["user_id"], code, {"rules": [
        {"if": {"os": ["ios"], "country": ["DE"]}, "url": "https://example.com/ios-de"}],
        "split": [{"url": "https://example.com/s", "weight": 1}]})
    stack.api("PATCH", f"/api/codes/{code['id']}", key, json_body={"url": "javascript:x"}, headers=HEADERS)
    stack.api("GET", "/api/codes?cursor=forged", key, headers=HEADERS)
    stack.api("GET", "/api/user", key[:-4] + "AAAA", headers=HEADERS)
    stack.api("GET", f"/api/codes/{code['id']}/qr?format=png", key, headers=HEADERS)
    # Subscribed after the code was created: nothing is ever sent to this closed loopback port.
    hook = stack.api("POST", "/api/webhooks", key, json_body={"url": "http://127.0.0.1:9/hook",
                                                             "events": ["code.deleted"]},
                     headers={**HEADERS, "Idempotency-Key": "privacy-2"}).json()
    rotated = stack.api("POST", f"/api/webhooks/{hook['id']}/rotate-secret", key, headers=HEADERS).json()
    for _ in range(6):
        r = stack.request("GET", f"{stack.redirect_url}/{code['shortcode']}", headers=HEADERS)
        assert r.status == 302 and "Set-Cookie" not in r.headers
    stack.request("HEAD", f"{stack.redirect_url}/{code['shortcode']}", headers=HEADERS)
    stack.request("GET", f"{stack.redirect_url}/zzzzzzz", headers=HEADERS)
    # Malformed requests (issue 16): http.server used to log the peer address with a traceback.
    client_ports = [raw(url, request)[3] for url in (stack.api_url, stack.redirect_url) for request in (
        f"POST /api/codes HTTP/1.1\r\nX-Forwarded-For: {CLIENT_IP}\r\nContent-Length: abc\r\n\r\n{{}}".encode(),
        b"GARBAGE\r\n\r\n", b"TRACE /api/codes HTTP/1.1\r\n\r\n")]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the scans reach the aggregates
        total = stack.api("GET", f"/api/codes/{code['id']}/analytics", key).json().get("total")
        if total == 6:
            break
        time.sleep(0.5)
    assert total == 6
    items = all_items(stack)
    log = stack.log.read_text(errors="replace")
    assert "Traceback" not in log and "Exception occurred during processing" not in log
    for port in client_ports:  # the loopback client's address, in any of the forms a logger prints it
        assert not re.search(rf"127\.0\.0\.1'?[,:] ?{port}\b", log), port
    for where, text in (("table items", items), ("stack log", log)):
        assert CLIENT_IP not in text, where
        assert "PrivacyProbe" not in text and "iPhone OS" not in text, where
        assert "probe-cookie" not in text and "referrer.example" not in text, where
        assert key not in text and key[11:] not in text, where
        assert "whsec_" not in text, where
        for secret in (hook["secret"], rotated["secret"]):
            assert secret.removeprefix("whsec_") not in text, where
