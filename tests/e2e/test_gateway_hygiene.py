"""The local gateway's HTTP hygiene (issue 16, item 7), over raw sockets: what
http.server would answer with an HTML page, a 501 or a logged traceback is an
answer in the contract's JSON envelope (tests/e2e/test_privacy.py checks that
the stack log holds no client address after these)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Stack


def raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes, int]:
    """Send ``request`` as is; (status, headers, body, the client's own port)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        client_port = sock.getsockname()[1]
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body[: int(headers["content-length"])], client_port


MALFORMED = [
    (b"POST /api/codes HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}", "Content-Length"),
    (b"POST /api/codes HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}", "Content-Length"),
    (b"POST /api/codes HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "Content-Length"),
    (b"POST /api/codes HTTP/1.1\r\nHost: x\r\nContent-Length: \xd9\xa3\r\n\r\n{}", "Content-Length"),  # Arabic 3
    (b"POST /api/codes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     "Transfer-Encoding"),
    (b"GARBAGE\r\n\r\n", "request"),
    (b"GET /api/user HTTP/9.9\r\nHost: x\r\n\r\n", None),
    (b"GET /api/user\r\n\r\n", None),  # HTTP/0.9: no status line, no headers
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", None),  # request line over 64 KiB
]


@pytest.mark.parametrize(("request_bytes", "field"), MALFORMED)
def test_malformed_requests_get_a_json_envelope(stack: Stack, request_bytes: bytes, field: str | None) -> None:
    status, headers, data, _ = raw(stack.api_url, request_bytes)
    body = json.loads(data)
    assert 400 <= status < 600 and status != 501, (status, body)
    assert headers["content-type"].startswith("application/json") and isinstance(body["error"], str), body
    if field is not None:
        assert (status, body["error"], body["field"]) == (400, "validation_error", field)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PUT", "OPTIONS", "PROPFIND", "FOO", "BREW"])
def test_every_method_on_a_known_path_is_405_in_the_envelope(stack: Stack, method: str) -> None:
    key = stack.account()["api_key"]
    request = f"{method} /api/codes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    status, headers, data, _ = raw(stack.api_url, request)
    body = json.loads(data)
    assert (status, body["error"]) == (405, "method_not_allowed"), body
    assert headers["content-type"].startswith("application/json")

