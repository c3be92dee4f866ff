"""The foundation as a new user meets it: `qrpro local`, `qrpro admin`, curl."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import boto3

from qrpro.data import keys as k
from qrpro.domain.clock import day_bucket, next_midnight
from qrpro.domain.errors import MESSAGES
from tests.e2e.conftest import BIN, Stack, running_stack, stop_stack_process


def test_create_account_then_get_user_over_http(stack: Stack) -> None:
    acct = stack.account("business")
    assert acct["api_key"].startswith("abnd_qrpro_")
    r = stack.api("GET", "/api/user", acct["api_key"])
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["id"] == acct["user_id"] and body["plan"] == "business"
    assert body["scope"] == {"type": "user"}
    assert r.headers["X-RateLimit-Limit"] == "1000"
    assert r.headers["X-RateLimit-Remaining"] == "999"
    assert int(r.headers["X-RateLimit-Reset"]) == next_midnight(int(time.time()))


def test_auth_errors_over_http(stack: Stack) -> None:
    assert stack.api("GET", "/api/user").json() == {"error": "not_signed_in", "message": MESSAGES["not_signed_in"]}
    r = stack.api("GET", "/api/user", "abnd_qrpro_" + "x" * 43)
    compact = json.dumps({"error": "invalid_api_key", "message": MESSAGES["invalid_api_key"]}, separators=(",", ":"))
    assert (r.status, r.body) == (401, compact.encode())  # compact, like every answer
    r = stack.api("GET", "/api/codes", stack.account("solo")["api_key"])
    assert r.status == 403 and r.body.startswith(b'{"error":"insufficient_plan","plan":"solo","required":"business",')
    key = stack.account()["api_key"]
    assert stack.api("PUT", "/api/user", key).json() == {"error": "method_not_allowed",
                                                         "message": MESSAGES["method_not_allowed"]}
    assert stack.api("GET", "/nope", key).json() == {"error": "not_found", "message": MESSAGES["not_found"]}


def test_admin_errors_are_one_line_without_traceback(stack: Stack) -> None:
    out = subprocess.run([str(BIN / "qrpro"), "admin", "create-key", "--user-id", "nobody",
                          "--data-dir", str(stack.data_dir)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    out = subprocess.run([str(BIN / "qrpro"), "admin", "create-account", "--email", "x@example.com", "--plan",
                          "business", "--data-dir", "/nonexistent-qrpro"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("qrpro: no local stack found")
    assert "Traceback" not in out.stderr


def test_port_already_taken_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run([str(BIN / "qrpro"), "local", "--in-memory", "--api-port", str(port),
                              "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"port {port} (api) is already in use" in out.stderr and "Traceback" not in out.stderr


def test_committed_writes_survive_a_restart(tmp_path: Path) -> None:
    with running_stack(tmp_path / "data") as first:
        acct = first.account("team")
        assert first.api("GET", "/api/user", acct["api_key"]).status == 200
        hook = first.api("POST", "/api/webhooks", acct["api_key"],
                         json_body={"url": "http://127.0.0.1:9/hook", "events": ["code.deleted"]}).json()
    with running_stack(tmp_path / "data") as second:
        r = second.api("GET", "/api/user", acct["api_key"])
        assert r.status == 200 and r.json()["id"] == acct["user_id"]
        # The day's budget survived too: this is the key's third request.
        assert r.headers["X-RateLimit-Remaining"] == "9997"
        # The key that seals webhook secrets survived with the data: the webhook still signs
        # (the ping goes to a closed loopback port and fails to connect, after signing).
        ping = second.api("POST", f"/api/webhooks/{hook['id']}/test", acct["api_key"])
        assert ping.status == 200 and ping.json()["status_code"] is None, ping.body


def test_a_relative_data_dir_works(tmp_path: Path) -> None:
    """`make local` uses the relative default `.qrpro`: DynamoDB Local must get an absolute path."""
    import urllib.request

    from qrpro_cli.engines import free_port

    api_port, redirect_port = free_port(), free_port()
    proc = subprocess.Popen([str(BIN / "qrpro"), "local", "--data-dir", "rel", "--api-port", str(api_port),
                             "--redirect-port", str(redirect_port)], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = tmp_path / "rel" / "local.json"
        deadline = time.monotonic() + 120
        while not conn.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert conn.exists(), "the stack did not start with a relative --data-dir"
        assert json.loads(conn.read_text())["engine"] == "dynamodb-local"
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/docs/openapi.json", timeout=30) as r:
            assert r.status == 200
        assert (tmp_path / "rel" / "dynamodb").is_dir()
    finally:
        stop_stack_process(proc)


def test_body_errors_over_http(stack: Stack) -> None:
    key = stack.account()["api_key"]
    r = stack.api("POST", "/api/codes", key, body=b"url=x", headers={"Content-Type": "text/plain"})
    assert (r.status, r.json()) == (415, {"error": "unsupported_media_type", "message": "send application/json"})
    r = stack.api("POST", "/api/codes", key, body=b'{"label": "' + b"x" * (1024 * 1024) + b'"}',
                  headers={"Content-Type": "application/json"})
    assert (r.status, r.json()["error"]) == (413, "payload_too_large")
    r = stack.api("POST", "/api/codes", key, json_body={"url": "javascript:alert(1)"})
    assert (r.status, r.json()["error"], r.json()["field"]) == (400, "validation_error", "url")
    assert r.headers["X-RateLimit-Remaining"] == "997"  # every metered request counted


def test_the_daily_budget_ends_in_429_over_http(stack: Stack) -> None:
    acct = stack.account("business")
    now = int(time.time())
    if next_midnight(now) - now < 60:  # the budget's day must not change under the test
        time.sleep(next_midnight(now) - now + 1)
        now = int(time.time())
    info = json.loads((stack.data_dir / "local.json").read_text())
    boto3.client("dynamodb", endpoint_url=info["endpoints"]["dynamodb"]).put_item(TableName=info["table"], Item={
        "pk": {"S": k.pk_rate(acct["key_id"], day_bucket(now))}, "sk": {"S": "RATE"}, "used": {"N": "998"}})
    for remaining in ("1", "0"):
        r = stack.api("GET", "/api/user", acct["api_key"])
        assert (r.status, r.headers["X-RateLimit-Remaining"]) == (200, remaining)
    r = stack.api("GET", "/api/codes", acct["api_key"])
    reset = next_midnight(now)
    assert (r.status, r.json()) == (429, {"error": "rate_limited", "window": "day", "retry_at": reset,
                                          "message": MESSAGES["rate_limited"]})
    assert abs(int(r.headers["Retry-After"]) - (reset - int(time.time()))) <= 2
    assert (r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"]) == ("1000", "0")
    assert r.headers["X-RateLimit-Reset"] == str(reset)
