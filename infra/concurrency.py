"""The concurrency plan: one line per function, its share of the account's Lambda concurrency.

Lambda runs at most the account's quota of executions at once in a region (1,000 by default; new
accounts may start at 10), shared by every function. A reservation (``ReservedConcurrentExecutions``)
is carved out of that quota: the function's floor and its ceiling at once. Lambda refuses any
reservation that leaves the account fewer than 100 unreserved executions.

The plan (docs/operations.md, "Concurrency plan", shows the arithmetic):

- the redirect (every printed code's scan) is reserved **what remains** once the other reservations
  and the 100 unreserved executions are set aside: nothing else can take its share;
- the API and its authorizer keep their own reservations (a scan flood cannot starve them either);
- background work is capped: export and the scheduled jobs by a reservation (their ceiling),
  the SQS consumers by their mapping's ``ScalingConfig.MaximumConcurrency``; they and the stream
  consumers (one batch per shard at a time) share the 100 unreserved executions, never the redirect's.

The account's quota is a synth-time context (``qrpro:accountConcurrency``, default 1,000): a quota
that cannot hold the plan stops the synth with what to do, before CloudFormation fails on a
function. ``qrpro:reserveConcurrency=false`` deploys without any reservation (a first deploy on an
account whose quota is still 10; docs/deploy.md). ``python -m infra.concurrency TEMPLATE`` compares a
synthesized template's reservations with the live account's quota (``make deploy`` runs it).

A new function gets its line in ``PLAN``; the stack refuses a function without one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Lambda keeps this many executions unreserved, whatever is asked.
UNRESERVED_MINIMUM = 100
DEFAULT_ACCOUNT_CONCURRENCY = 1_000


@dataclass(frozen=True)
class Reserved:
    """A fixed reservation: the function's floor and its ceiling."""

    executions: int
    why: str


@dataclass(frozen=True)
class Remainder:
    """A reservation of whatever the account has left once the other shares are set (at least ``minimum``)."""

    minimum: int
    why: str


@dataclass(frozen=True)
class Shared:
    """No reservation: the function runs in the unreserved pool. ``mapping_cap`` is its SQS event source
    mapping's ``MaximumConcurrency``; None when its source bounds it (a stream: one batch per shard)."""

    why: str
    mapping_cap: int | None = None


Share = Reserved | Remainder | Shared

PLAN: dict[str, Share] = {
    "redirect": Remainder(100, "every scan of a printed code: the product's critical path gets all that is left"),
    "api": Reserved(100, "100 executions serve the stage's 500 requests/s at 200 ms each; also its ceiling"),
    "authorizer": Reserved(50, "one GetItem per API request (no result cache): half the api's share"),
    "export": Reserved(10, "CPU-bound for up to its timeout; ten at once is more than the daily per-key export "
                           "budget needs, and a burst of exports cannot take more"),
    "fanout": Reserved(1, "one run at a time, every minute, a few seconds each: a run that overlaps the next "
                          "waits (the second queues the same days up to a newer fence)"),
    "expiry": Reserved(1, "one sweep at a time (every 15 minutes, a few seconds each)"),
    "scans": Shared("counts scans in batches of 100; ten batches at once keep a viral scope's aggregate "
                    "items under DynamoDB's per-partition write rate", mapping_cap=10),
    "compaction": Shared("fold jobs, 50 days a message, checked and folded 8 side by side: 18 workers keep "
                         "100,000 active scopes under 5 minutes of lag (benchmarks/bench_compaction.py)",
                         mapping_cap=18),
    "mail": Shared("the monthly cap email, at most one per scope and month", mapping_cap=2),
    "webhooks": Shared("one delivery attempt per message, 10 per batch; twenty batches at once deliver "
                       "hundreds of webhooks a second, and a backlog cannot grow past that", mapping_cap=20),
    "events": Shared("the outbox stream: one batch per shard at a time (ParallelizationFactor 1)"),
    "usagekeys": Shared("the table stream (key listings, plans): one batch per shard at a time"),
}


class ConcurrencyPlanError(ValueError):
    """The account's concurrency cannot hold the plan."""


@dataclass(frozen=True)
class Budget:
    """The plan applied to an account's quota: what the template reserves and caps."""

    account: int
    reserved: dict[str, int]  # function -> ReservedConcurrentExecutions (absent: none)
    mapping_caps: dict[str, int]  # function -> its SQS mapping's MaximumConcurrency


def required(plan: Mapping[str, Share] = PLAN) -> int:
    """The smallest account quota that holds the plan's reservations plus Lambda's unreserved minimum."""
    return UNRESERVED_MINIMUM + sum(s.executions if isinstance(s, Reserved) else s.minimum
                                    for s in plan.values() if not isinstance(s, Shared))


def budget(account: int = DEFAULT_ACCOUNT_CONCURRENCY, *, reserve: bool = True,
           plan: Mapping[str, Share] = PLAN) -> Budget:
    """The reservations and mapping caps of ``plan`` on an account whose quota is ``account``."""
    caps = {name: s.mapping_cap for name, s in plan.items() if isinstance(s, Shared) and s.mapping_cap}
    if sum(caps.values()) >= UNRESERVED_MINIMUM:
        raise ConcurrencyPlanError(f"the SQS consumers' caps ({sum(caps.values())}) must leave room in the "
                                   f"{UNRESERVED_MINIMUM} unreserved executions for the stream consumers")
    remainders = [name for name, s in plan.items() if isinstance(s, Remainder)]
    if len(remainders) != 1:
        raise ConcurrencyPlanError(f"exactly one function takes the remainder, not {remainders}")
    if not reserve:
        return Budget(account, {}, caps)
    need = required(plan)
    if account < need:
        shares = ", ".join(f"{name} {s.executions if isinstance(s, Reserved) else f'>= {s.minimum}'}"
                           for name, s in plan.items() if not isinstance(s, Shared))
        raise ConcurrencyPlanError(
            f"qrpro:accountConcurrency={account}: the account's Lambda concurrency cannot hold the concurrency "
            f"plan, which reserves {shares} and must leave the {UNRESERVED_MINIMUM} executions Lambda keeps "
            f"unreserved: {need} at least. Ask AWS to raise the quota (Service Quotas > AWS Lambda > Concurrent "
            f"executions; the default is {DEFAULT_ACCOUNT_CONCURRENCY:,}) and deploy with ACCOUNT_CONCURRENCY="
            f"<the new quota>, or deploy once without reservations with RESERVE_CONCURRENCY=false (nothing then "
            f"protects the redirect's share; docs/deploy.md, 'Lambda concurrency')")
    reserved = {name: s.executions for name, s in plan.items() if isinstance(s, Reserved)}
    reserved[remainders[0]] = account - UNRESERVED_MINIMUM - sum(reserved.values())
    return Budget(account, reserved, caps)


def account_quota(value: object) -> int:
    """The ``qrpro:accountConcurrency`` context value (absent: Lambda's default quota)."""
    if value is None or value == "":
        return DEFAULT_ACCOUNT_CONCURRENCY
    try:
        quota = int(str(value))
    except ValueError:
        quota = 0
    if quota < 1:
        raise ConcurrencyPlanError(f"qrpro:accountConcurrency must be the account's Lambda concurrency quota "
                                   f"(a whole number, e.g. {DEFAULT_ACCOUNT_CONCURRENCY}), not {value!r}")
    return quota


def template_reservations(template: Mapping[str, Any]) -> int:
    """The executions a synthesized template reserves."""
    return sum(int(r.get("Properties", {}).get("ReservedConcurrentExecutions", 0))
               for r in template.get("Resources", {}).values() if r.get("Type") == "AWS::Lambda::Function")


def preflight(template: Mapping[str, Any], account_limit: int) -> str | None:
    """Why the account (quota ``account_limit``) would refuse the template's reservations, or None."""
    reserved = template_reservations(template)
    if not reserved or reserved + UNRESERVED_MINIMUM <= account_limit:
        return None
    return (f"this account's Lambda concurrency quota is {account_limit}: the stack reserves {reserved} "
            f"executions and Lambda keeps {UNRESERVED_MINIMUM} unreserved, so CloudFormation would fail on a "
            f"function. Deploy with ACCOUNT_CONCURRENCY={account_limit} (the plan is computed from it), ask AWS "
            f"to raise the quota, or deploy with RESERVE_CONCURRENCY=false (docs/deploy.md, 'Lambda concurrency')")


def main(argv: list[str]) -> int:
    """``python -m infra.concurrency TEMPLATE``: the template's reservations against the live account."""
    import boto3

    template = json.loads(Path(argv[0]).read_text())
    limit = int(boto3.client("lambda").get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
    problem = preflight(template, limit)
    if problem:
        print(f"deploy stopped: {problem}", file=sys.stderr)
        return 1
    print(f"Lambda concurrency: the stack reserves {template_reservations(template)} of the account's {limit}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
