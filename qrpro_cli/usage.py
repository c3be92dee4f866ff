"""API Gateway's usage plans on the local API port.

For a method with ``apiKeyRequired`` (key source ``AUTHORIZER``), API Gateway
takes the authorizer's ``usageIdentifierKey``: it must be the value of an
existing, enabled API key on a usage plan of the stage, or the request is
refused (``INVALID_API_KEY``); then the plan's throttle (``THROTTLED``) and
quota (``QUOTA_EXCEEDED``) apply per key, all before the integration runs.
The keys and plans are read from moto's API Gateway, where the stack
provisioned them from the template and where the functions create and delete
keys; moto counts nothing, so the quota and the throttle (a token bucket of
``rateLimit`` per second up to ``burstLimit``) are counted here, per key, in
memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3


def period(kind: str, now: float) -> str:
    """The quota period ``now`` falls in (UTC, as API Gateway with offset 0)."""
    when = datetime.fromtimestamp(now, UTC)
    if kind == "DAY":
        return when.strftime("%Y-%m-%d")
    if kind == "WEEK":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    return when.strftime("%Y-%m")


class Counters:
    """Per-key quota and throttle counting (pure: the clock is passed in)."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str], int] = {}  # (key id, period) -> admitted requests
        self.buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self.lock = threading.Lock()

    def admit(self, key_id: str, plan: dict[str, Any], now: float) -> str | None:
        """None if admitted (and counted), else the gateway response type that refuses it."""
        with self.lock:
            throttle = plan.get("throttle")
            if throttle:
                rate, burst = float(throttle.get("rateLimit", 0)), float(throttle.get("burstLimit", 0))
                tokens, at = self.buckets.get(key_id, (burst, now))
                tokens = min(burst, tokens + (now - at) * rate)
                if tokens < 1:
                    self.buckets[key_id] = (tokens, now)
                    return "THROTTLED"
                self.buckets[key_id] = (tokens - 1, now)
            quota = plan.get("quota")
            if quota:
                slot = (key_id, period(str(quota.get("period", "DAY")), now))
                if self.used.get(slot, 0) >= int(quota["limit"]):
                    return "QUOTA_EXCEEDED"
                self.used[slot] = self.used.get(slot, 0) + 1
            return None


class UsagePlans:
    """The usage plans of one stage, as API Gateway applies them to a request."""

    def __init__(self, api_id: str, stage: str, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.api_id, self.stage = api_id, stage
        self.client = client or boto3.client("apigateway")
        self.clock = clock
        self.counters = Counters()

    def _key(self, value: str) -> dict[str, Any] | None:
        for page in self.client.get_paginator("get_api_keys").paginate(includeValues=True):
            for item in page.get("items", []):
                if item.get("value") == value:
                    return dict(item)
        return None

    def _plan(self, key_id: str) -> dict[str, Any] | None:
        for page in self.client.get_paginator("get_usage_plans").paginate(keyId=key_id):
            for plan in page.get("items", []):
                if any(s.get("apiId") == self.api_id and s.get("stage") == self.stage
                       for s in plan.get("apiStages", [])):
                    return dict(plan)
        return None

    def admit(self, usage_key: str | None) -> str | None:
        """None if the request may reach the integration, else the gateway response type."""
        key = self._key(usage_key) if usage_key else None
        plan = self._plan(key["id"]) if key is not None and key.get("enabled") else None
        if key is None or plan is None:
            return "INVALID_API_KEY"
        return self.counters.admit(key["id"], plan, self.clock())
