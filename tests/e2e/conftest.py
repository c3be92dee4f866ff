"""The local stack as a user runs it: `qrpro local --in-memory` on free ports,
driven over real HTTP and through the `qrpro admin` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qrpro_cli.engines import free_port
from tests.conftest import Reply

BIN = Path(sys.executable).parent


@dataclass
class Stack:
    api_url: str
    redirect_url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def admin(self, *args: str) -> dict[str, Any]:
        out = subprocess.run([str(BIN / "qrpro"), "admin", *args, "--data-dir", str(self.data_dir)],
                             capture_output=True, text=True, timeout=60, check=False)
        if out.returncode != 0:
            raise AssertionError(f"qrpro admin {' '.join(args)} failed: {out.stderr}")
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def account(self, plan: str = "business") -> dict[str, Any]:
        email = f"{os.urandom(5).hex()}@example.com"
        return self.admin("create-account", "--email", email, "--plan", plan)

    def request(self, method: str, url: str, token: str | None = None, json_body: Any = None,
                body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=30) as resp:
                return Reply(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return Reply(err.code, dict(err.headers.items()), err.read())

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> Reply:
        return self.request(method, self.api_url + path, token, **kw)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def start_stack(data_dir: Path, *extra: str) -> Stack:
    api_port, redirect_port = free_port(), free_port()
    log = data_dir / "stack.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "qrpro"), "local", "--api-port", str(api_port), "--redirect-port", str(redirect_port),
             "--data-dir", str(data_dir), *extra],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    conn = data_dir / "local.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"qrpro local exited: {log.read_text()[-3000:]}")
        if conn.exists():
            try:
                info = json.loads(conn.read_text())
                if info.get("pid") == proc.pid:
                    return Stack(info["api_url"], info["redirect_url"], data_dir, proc, log)
            except ValueError:
                pass
        time.sleep(0.2)
    stop_stack_process(proc)
    raise AssertionError(f"qrpro local did not start: {log.read_text()[-3000:]}")


def stop_stack_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:  # the stack is gone; make sure nothing it started lingers
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_stack(data_dir: Path, *extra: str) -> Iterator[Stack]:
    """`qrpro local` for the duration of a block (or a fixture), always stopped afterwards."""
    s = start_stack(data_dir, *extra)
    try:
        yield s
    finally:
        stop_stack_process(s.proc)


def until(check: Any, seconds: float = 20.0) -> Any:
    """``check()`` once it is truthy, polling for up to ``seconds`` (its last answer otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def template_without(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the synthesized template with ``change`` applied (for `qrpro local --template`)."""
    from qrpro_cli.template import synthesized

    doc = json.loads(synthesized().read_text())
    change(doc["Resources"])
    path.write_text(json.dumps(doc))
    return path


def resource(resources: dict[str, Any], kind: str, contains: str) -> dict[str, Any]:
    """The one resource of ``kind`` whose logical id contains ``contains``."""
    found = [r for lid, r in resources.items() if r["Type"] == kind and contains in lid]
    assert len(found) == 1, f"{len(found)} {kind} resources match {contains!r}"
    return found[0]["Properties"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), "--in-memory") as s:
        yield s
