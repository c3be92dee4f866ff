"""Runs Lambda handlers locally the way Lambda does: each worker process is
one warm container that handles one event at a time.

The functions get exactly the events AWS would send them (API Gateway REST
proxy events, authorizer events, SQS and DynamoDB stream batches, scheduled
events) and the environment their stack gives them, with endpoints pointed at
the local engines.
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import os
import time
import traceback
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from threading import Lock
from typing import Any

# Function name -> handler ("module.attribute"). infra/ deploys the same handlers.
FUNCTIONS: dict[str, str] = {
    "api": "lambdas.api.handler.handler",
    "authorizer": "lambdas.authorizer.handler.handler",
    "redirect": "lambdas.redirect.handler.handler",
    "export": "lambdas.export.handler.handler",
    "scans": "lambdas.scans.handler.handler",
    "events": "lambdas.events.handler.handler",
    "webhooks": "lambdas.webhooks.handler.handler",
    "expiry": "lambdas.expiry.handler.handler",
}


def available(name: str) -> bool:
    """Whether the function's handler module exists in this checkout."""
    module = FUNCTIONS[name].rpartition(".")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@dataclass
class FakeContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:qrpro-{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/qrpro-{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _init(env: dict[str, str], preload: list[str]) -> None:
    os.environ.update(env)
    # Metrics are off locally; Powertools still warns at every invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    for name in preload:
        _handler(name)


_handlers: dict[str, Any] = {}


def _handler(name: str) -> Any:
    if name not in _handlers:
        module, _, attr = FUNCTIONS[name].rpartition(".")
        _handlers[name] = getattr(importlib.import_module(module), attr)
    return _handlers[name]


def invoke_here(name: str, event: dict[str, Any], request_id: str) -> dict[str, Any]:
    """Run one invocation in this process; errors come back as data, like Lambda's."""
    try:
        result = _handler(name)(event, FakeContext(name, request_id))
        return {"ok": True, "result": result}
    except Exception as err:
        return {"ok": False, "type": type(err).__name__, "message": str(err),
                "trace": traceback.format_exc(limit=20)}


class Runtime:
    """A pool of warm worker processes shared by all functions."""

    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.env = env
        self.workers = workers
        self._lock = Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init,
                                   initargs=(self.env, ["api", "authorizer"]))

    def warm(self) -> None:
        futures = [self._pool.submit(time.sleep, 0.01) for _ in range(self.workers)]
        for f in futures:
            f.result(timeout=120)

    def invoke(self, name: str, event: dict[str, Any], timeout: float = 60,
               request_id: str | None = None) -> dict[str, Any]:
        request_id = request_id or str(uuid.uuid4())
        try:
            return self._pool.submit(invoke_here, name, event, request_id).result(timeout=timeout)
        except BrokenProcessPool:
            with self._lock:
                self._pool = self._new_pool()
            return {"ok": False, "type": "BrokenProcessPool", "message": "worker died", "trace": ""}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
