"""One webhook HTTP attempt, safe against SSRF and DNS rebinding.

The target host is resolved once; every address it resolves to is checked
(``qrpro.domain.addresses.address_problem``) and the connection is made to the
checked address itself, never to the name again: a rebinding DNS server has no
second lookup to answer. TLS still verifies the certificate for the host name
(SNI and hostname check on the URL's host), and the ``Host`` header carries the
name. No proxy, no redirects (a 3xx is a failed attempt), 10 s in total.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from qrpro.domain import addresses as reachable
from qrpro.domain import webhooks as rules


class TargetRefused(Exception):
    """The target's scheme or addresses are not allowed (or it does not resolve)."""


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return rules.succeeded(self.status_code)


def resolve(host: str, port: int, allow_loopback: bool) -> list[str]:
    """The addresses ``host`` resolves to, all checked; TargetRefused if any is forbidden."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as err:
        raise TargetRefused("host does not resolve") from err
    addresses: list[str] = []
    for info in infos:
        if info[0] not in (socket.AF_INET, socket.AF_INET6):
            continue
        sockaddr: Any = info[4]
        text = str(sockaddr[0])
        if info[0] == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
            text = f"{text.split('%')[0]}%{sockaddr[3]}"  # keep the zone: refused as link-local
        try:
            ip = reachable.parse_ip(text)
        except ValueError as err:
            raise TargetRefused("host resolves to an unparseable address") from err
        why = reachable.refused_addresses([ip], allow_loopback)
        if why is not None:
            raise TargetRefused(why)
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise TargetRefused("host does not resolve")
    return addresses


def check_target(url: str, allow_loopback: bool) -> tuple[str, str, int, list[str]]:
    """``(scheme, host, port, addresses)`` of an allowed target, or TargetRefused."""
    try:
        scheme, host, port = rules.check_url_shape(url, allow_http=allow_loopback)
    except ValueError as err:
        raise TargetRefused(str(err)) from err
    return scheme, host, port, resolve(host, port, allow_loopback)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a fixed address; ``Host`` stays the URL's host (local stack only)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with SNI and the certificate checked for the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def _describe(err: BaseException, timeout: float = rules.TIMEOUT_SECONDS) -> str:
    if isinstance(err, TimeoutError | socket.timeout):
        return f"timeout after {timeout:g} s"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {err.verify_message}"
    if isinstance(err, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, ConnectionResetError):
        return "connection reset"
    if isinstance(err, http.client.HTTPException):
        return f"invalid HTTP response ({type(err).__name__})"
    if isinstance(err, OSError):
        return f"connection failed ({err.strerror or type(err).__name__})"
    return f"delivery failed ({type(err).__name__})"


def post(url: str, body: bytes, headers: dict[str, str], *, allow_loopback: bool,
         timeout: float = rules.TIMEOUT_SECONDS, tls: ssl.SSLContext | None = None) -> Attempt:
    """One POST of ``body``: resolve and check, connect to the checked address, read the status.

    Never raises for the target's sake: a refused target, a timeout or any
    transport error is a failed Attempt with a short error text (no addresses,
    no response body).
    """
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, addresses = check_target(url, allow_loopback)
    except TargetRefused as err:
        return Attempt(None, rules.clip_error(f"target refused: {err}"), elapsed())
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = started + timeout
    last: BaseException | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = TimeoutError()
            break
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = _PinnedHTTPSConnection(host, port, address, remaining, tls or ssl.create_default_context())
        else:
            conn = _PinnedHTTPConnection(host, port, address, remaining)
        # A watchdog bounds the whole exchange (a server trickling bytes cannot hold it past the deadline).
        timer = threading.Timer(remaining, _abort, args=(conn,))
        timer.daemon = True
        timer.start()
        try:
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as err:
                if isinstance(err, ssl.SSLError) or time.monotonic() >= deadline:
                    return Attempt(None, rules.clip_error(_describe(err, timeout)), elapsed())
                last = err
                continue  # another checked address of the same host
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            status = response.status
            response.close()  # the body is never read, let alone stored
        except Exception as err:
            reason = TimeoutError() if time.monotonic() >= deadline else err
            return Attempt(None, rules.clip_error(_describe(reason, timeout)), elapsed())
        finally:
            timer.cancel()
            conn.close()
        if rules.succeeded(status):
            return Attempt(status, None, elapsed())
        phrase = http.client.responses.get(status, "")
        note = " (redirects are not followed)" if 300 <= status < 400 else ""
        return Attempt(status, rules.clip_error(f"HTTP {status} {phrase}".rstrip() + note), elapsed())
    return Attempt(None, rules.clip_error(_describe(last or OSError("no address"), timeout)), elapsed())


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
