"""Runs Lambda functions locally the way Lambda does: each function has its own
warm containers (worker processes, up to ``workers`` at once), each handling
one event at a time, with the handler, environment, timeout and memory size
that the synthesized template gives it, and (unless switched off) its IAM
role enforced on every AWS call (``qrpro_cli.iam``). A container whose memory
(resident set) outgrows the function's ``MemorySize`` is killed, as Lambda
kills it ("Runtime exited with error: signal: killed", ``Runtime.ExitError``).

Every event is validated against Powertools' parser model of the real AWS
event before it is handed over (``qrpro_cli.events``).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from qrpro_cli import events
from qrpro_cli.template import ACCOUNT, REGION


@dataclass
class FunctionSpec:
    """One function as the template defines it, with local values substituted."""

    name: str
    handler: str  # module.attribute
    env: dict[str, str]
    timeout: int = 30
    memory: int = 512
    role_name: str = ""
    policies: list[dict[str, Any]] | None = None  # None: IAM not enforced
    hash_keys: dict[str, str] = field(default_factory=dict)  # table -> partition key (dynamodb:LeadingKeys)


@dataclass
class FakeContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    deadline: float = 0.0  # time.monotonic() at which Lambda stops the invocation; 0: 30 s from now

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + 30

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:qrpro-{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/qrpro-{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


_handlers: dict[str, Any] = {}


def _handler(path: str) -> Any:
    if path not in _handlers:
        module, _, attr = path.rpartition(".")
        _handlers[path] = getattr(importlib.import_module(module), attr)
    return _handlers[path]


PAGE = os.sysconf("SC_PAGE_SIZE")
MEMORY_CHECK_SECONDS = 0.05


def resident_mb() -> float:
    """This process's resident memory, in MiB (what Lambda's memory limit bounds)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def _watch_memory(limit_mb: int) -> None:
    """Kill this container once it holds more than the function's memory, as Lambda does."""
    while True:
        if resident_mb() > limit_mb:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(MEMORY_CHECK_SECONDS)


def _init(spec: FunctionSpec) -> None:
    """A new container: the function's environment, its role, its handler imported (cold start),
    its memory watched."""
    threading.Thread(target=_watch_memory, args=(spec.memory,), daemon=True, name="memory").start()
    os.environ.clear()
    os.environ.update(spec.env)
    # Metrics are off locally; Powertools still warns at every invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if spec.policies is not None:
        from qrpro_cli import iam

        iam.enforce(iam.Policy(spec.policies), iam.Calls(spec.hash_keys), spec.role_name, spec.name)
    _handler(spec.handler)


def invoke_here(handler: str, name: str, event: dict[str, Any], request_id: str, timeout: float = 30,
                memory: int = 1024) -> dict[str, Any]:
    """Run one invocation in this process; errors come back as data, like Lambda's."""
    context = FakeContext(name, request_id, memory, deadline=time.monotonic() + timeout)
    try:
        return {"ok": True, "result": _handler(handler)(event, context)}
    except Exception as err:
        return {"ok": False, "type": type(err).__name__, "message": str(err),
                "trace": traceback.format_exc(limit=20)}


class Runtime:
    """The functions' containers: one pool of worker processes per function, started on first use."""

    def __init__(self, functions: dict[str, FunctionSpec], workers: int = 2) -> None:
        self.functions = functions
        self.workers = workers
        self._lock = Lock()
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._closed = False

    def _pool(self, name: str) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the local stack is stopping")
            if name not in self._pools:
                ctx = multiprocessing.get_context("spawn")
                self._pools[name] = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init,
                                                        initargs=(self.functions[name],))
            return self._pools[name]

    def _discard(self, name: str, pool: ProcessPoolExecutor) -> None:
        """Lambda stops a container that timed out or crashed: so do we."""
        with self._lock:
            if self._pools.get(name) is pool:
                del self._pools[name]
        for proc in list(getattr(pool, "_processes", {}).values()):  # no public API to kill a worker
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def warm(self, *names: str) -> None:
        futures = [self._pool(n).submit(time.sleep, 0.01) for n in names if n in self.functions]
        for f in futures:
            f.result(timeout=120)

    def invoke(self, name: str, event: dict[str, Any], kind: str, request_id: str | None = None) -> dict[str, Any]:
        """Invoke ``name`` with an event of ``kind`` (see ``qrpro_cli.events``), as Lambda would."""
        events.validate(kind, event)
        spec = self.functions[name]
        request_id = request_id or str(uuid.uuid4())
        pool = self._pool(name)
        try:
            future = pool.submit(invoke_here, spec.handler, name, event, request_id, spec.timeout, spec.memory)
        except (BrokenProcessPool, RuntimeError):  # a container just stopped: start a new one
            self._discard(name, pool)
            pool = self._pool(name)
            future = pool.submit(invoke_here, spec.handler, name, event, request_id, spec.timeout, spec.memory)
        try:
            return future.result(timeout=spec.timeout + 5)  # + the container's start, on a cold one
        except FutureTimeout:
            self._discard(name, pool)
            return {"ok": False, "type": "Sandbox.Timedout", "trace": "",
                    "message": f"Task timed out after {spec.timeout:.2f} seconds"}
        except BrokenProcessPool:
            self._discard(name, pool)
            return {"ok": False, "type": "Runtime.ExitError", "trace": "",
                    "message": "Runtime exited with error: signal: killed (memory or a crash)"}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
