"""Panes: how scans wait to be folded (docs/analytics.md, "How a scan is counted").

The aggregator writes each batch as one item per scope, UTC day and plan, a
*pane*, under a sequence number from a shared counter (one write per batch
takes as many as the batch has panes), and marks the day open.
The compaction folds a day's panes in sequence order from a checkpoint: each
step reads only the panes written since the last one. Readers fold what no step
has folded yet. A scan delivered twice is a repeated row with the same id; its
earlier copies can only sit in panes from the pane's ``window`` on, so a step
checks its new rows against those ids only (``first_copies``).

Items (keys: docs/data-model.md):

- ``PANE#{scope}#{day}`` / ``#{seq}``: a pane (``scan_codec.pane_attributes``);
- ``PANE#{scope}#{day}`` / ``!``: the day's checkpoint: every pane below ``ck`` is
  folded; ``stage``: the end of a step under way (its writes are guarded by it);
- ``OPEN#{shard}`` / ``{scope}#{day}``: the day's open mark (``v`` moves with each
  pane of a day that has ended);
- ``SEQ`` / ``SEQ``: the sequence counter; ``SEQ`` / ``FENCES``: the fences, the
  counter's value as the fan-out read it each minute of the last two hours.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data.aws import client, ddb
from qrpro.data.counting import Counter, fold
from qrpro.data.table import av, error_code, from_item, key, query_items, table, unavailable_on_throttle
from qrpro.domain import scan_codec as codec
from qrpro.domain.plans import plan
from qrpro.domain.scan_codec import Pane, Scan

log = logging.getLogger("qrpro.scans")

HORIZON_DAYS = 16  # a scan of a day that ended longer ago is not counted (SQS keeps 4 d, the DLQ 14 d at most)
CLOSE_AFTER = 900  # seconds after its day ended that a day with nothing left to fold is closed
WRITE_SECONDS = 30  # the aggregator's timeout: a batch's puts end within it
# A batch's panes are all written within this long after it took their sequence numbers, so a fence
# (the counter's value at a time T) is settled, every pane below it visible, SETTLE seconds after T.
BLOCK_SLACK = WRITE_SECONDS + 10
SETTLE = BLOCK_SLACK
SKEW = 60  # seconds of doubt between SQS's SentTimestamp and our clock
FENCE_KEEP = 2 * 3600  # fences older than this are dropped
CHECKPOINT_SK = "!"
LIVE_REACH = 900  # seconds back a reader checks a scan's earlier copies (the compaction: any distance)

_marked: set[tuple[str, str]] = set()  # (scope, day) this container marked open while the day ran
_fences: dict[str, Any] = {"at": -1e9, "list": []}


def reset() -> None:
    """Forget what this container holds (a new table in tests: its own counter and fences)."""
    _marked.clear()
    _fences.update(at=-1e9, list=[])


def day_end(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) + 86_400


def too_late(day: str, now: int) -> bool:
    return now >= day_end(day) + HORIZON_DAYS * 86_400


def pane_ttl(day: str) -> int:
    return day_end(day) + (HORIZON_DAYS + 1) * 86_400


# -- the sequence and its fences ----------------------------------------------------------------

def take(count: int) -> int:
    """The first of ``count`` consecutive sequence numbers, taken now (one write). Numbers are
    taken per batch, never kept for later: a batch's puts end within its invocation, which is
    what lets a fence settle (``SETTLE``)."""
    out = ddb().update_item(TableName=table(), Key=key(k.SEQ, k.SEQ), UpdateExpression="ADD n :c",
                            ExpressionAttributeValues={":c": av(count)}, ReturnValues="UPDATED_NEW")
    return int(out["Attributes"]["n"]["N"]) - count


@dataclass(frozen=True, slots=True)
class Fence:
    """The counter's value ``seq`` read at ``at``: every number below it was taken before ``at``
    (so its pane is visible from ``at + SETTLE``), every number from it on after ``at``."""

    at: int
    seq: int


def _parse_fences(text: str) -> list[Fence]:
    return [Fence(int(a), int(s)) for a, s in (part.split(":") for part in text.split())] if text else []


def fences(max_age: float = 10.0) -> list[Fence]:
    """The recorded fences, oldest first (read at most every ``max_age`` seconds per container)."""
    clock = time.time()
    if clock - float(_fences["at"]) > max_age:
        with unavailable_on_throttle():
            item = ddb().get_item(TableName=table(), Key=key(k.SEQ, k.FENCES), ConsistentRead=True).get("Item", {})
        _fences.update(at=clock, list=_parse_fences(item.get("f", {}).get("S", "")))
    return list(_fences["list"])


def record_fence(now: int) -> list[Fence]:
    """Read the counter and add it to the fences (the fan-out, once a minute). Returns them all."""
    before = int(time.time())  # numbers from the value read on were taken after this
    out = ddb().get_item(TableName=table(), Key=key(k.SEQ, k.SEQ), ConsistentRead=True).get("Item", {})
    seq = int(out.get("n", {}).get("N", 0))
    kept = [f for f in fences(max_age=0) if f.at >= now - FENCE_KEEP and f.at < before]
    kept.append(Fence(min(before, now), seq))
    ddb().put_item(TableName=table(), Item={"pk": av(k.SEQ), "sk": av(k.FENCES),
                                            "f": av(" ".join(f"{f.at}:{f.seq}" for f in kept))})
    _fences.update(at=time.time(), list=kept)
    return kept


def settled(history: list[Fence], now: int) -> Fence | None:
    """The newest fence every pane below which is visible now."""
    done = [f for f in history if f.at <= now - SETTLE]
    return done[-1] if done else None


def window_start(history: list[Fence], since: float) -> int:
    """The lowest sequence number a pane written at ``since`` or later can have: the newest fence
    read before its number could have been taken (0 when the fences do not reach back so far)."""
    before = [f.seq for f in history if f.at <= since - BLOCK_SLACK]
    return before[-1] if before else 0


def earliest_copy(scan: Scan) -> float:
    """When the first copy of ``scan`` can have been written at the earliest: a message's copies
    (redelivered, duplicated by SQS or the send's retry) share its SentTimestamp; a scan the
    redirect sent again or parked may have a copy anywhere in its hour."""
    if scan.sent_ms is not None and not scan.resent and scan.parked is None:
        return scan.sent_ms / 1000 - SKEW
    return datetime.strptime(scan.hour, "%Y-%m-%d-%H").replace(tzinfo=UTC).timestamp()


# -- the aggregator's writes ------------------------------------------------------------------

def put(scans: list[Scan], now: int) -> list[Scan]:
    """Write ``scans`` (each id once) as one pane per scope, day and plan, and mark their days
    open. Returns the scans not written (their messages are redelivered)."""
    groups: dict[tuple[str, str, str], list[Scan]] = {}
    for s in scans:
        groups.setdefault((s.scope, s.day, s.plan), []).append(s)
    if not groups:
        return []
    try:
        history, first = fences(), take(len(groups))
    except (ClientError, BotoCoreError) as err:
        log.warning("no sequence numbers: %s", error_code(err) if isinstance(err, ClientError) else type(err).__name__)
        return list(scans)
    failed: list[Scan] = []
    for seq, ((scope, day, plan_name), group) in enumerate(sorted(groups.items()), start=first):
        try:
            window = window_start(history, min(earliest_copy(s) for s in group))
            attrs = codec.pane_attributes(group, window, plan(plan_name).hourly_analytics)
            item = {"pk": av(k.pk_pane(scope, day)), "sk": av(codec.pane_sk(seq)), k.TTL: av(pane_ttl(day)),
                    **{name: av(value) for name, value in attrs.items()}}
            ddb().put_item(TableName=table(), Item=item)
            mark_open(scope, day, now)
        except (ClientError, BotoCoreError) as err:
            log.warning("pane not written: %s", error_code(err) if isinstance(err, ClientError) else type(err).__name__)
            failed += group
    return failed


def mark_open(scope: str, day: str, now: int) -> None:
    """After the pane's put: a day still running is marked once per container (it is not closed
    before it ends); a pane of an ended day moves ``v``, so that a step that read the panes
    before it cannot close the day."""
    ended = now >= day_end(day)
    if not ended and (scope, day) in _marked:
        return
    ddb().update_item(TableName=table(), Key=key(codec.mark_pk(scope), codec.mark_sk(scope, day)),
                      UpdateExpression="SET v = :v, #ttl = :ttl", ExpressionAttributeNames={"#ttl": k.TTL},
                      ExpressionAttributeValues={":v": av(uuid.uuid4().hex), ":ttl": av(pane_ttl(day))})
    if not ended:
        _marked.add((scope, day))


# -- marks and jobs (the fan-out) --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mark:
    scope: str
    day: str
    v: str


def open_marks() -> list[Mark]:
    """Every open (scope, day), with its mark's ``v`` as read."""
    out = []
    for shard in range(codec.OPEN_SHARDS):
        for item in query_items({"TableName": table(), "KeyConditionExpression": "pk = :pk", "ConsistentRead": True,
                                 "ExpressionAttributeValues": {":pk": av(f"OPEN#{shard}")}}):
            scope, day = codec.parse_mark_sk(str(item["sk"]))
            out.append(Mark(scope, day, str(item.get("v", ""))))
    return out


def mark(scope: str, day: str) -> Mark | None:
    item = ddb().get_item(TableName=table(), Key=key(codec.mark_pk(scope), codec.mark_sk(scope, day)),
                          ConsistentRead=True).get("Item")
    return None if item is None else Mark(scope, day, item.get("v", {}).get("S", ""))


def open_days(scope: str) -> list[str]:
    """The scope's open days (one Query of one partition)."""
    items = query_items({"TableName": table(), "ConsistentRead": True,
                         "KeyConditionExpression": "pk = :pk AND begins_with(sk, :s)",
                         "ExpressionAttributeValues": {":pk": av(codec.mark_pk(scope)), ":s": av(f"{scope}#")}})
    return [codec.parse_mark_sk(str(i["sk"]))[1] for i in items]


JOBS_PER_MESSAGE = 50  # days a fold message carries: a worker checks them side by side


def enqueue(jobs: list[codec.Job]) -> None:
    """The fold jobs, ``JOBS_PER_MESSAGE`` to a message and 10 messages to a call; raises if any
    could not be queued (the next minute's run queues them again)."""
    sqs, url = client("sqs"), settings().compaction_queue_url
    bodies = [codec.jobs(jobs[i:i + JOBS_PER_MESSAGE]) for i in range(0, len(jobs), JOBS_PER_MESSAGE)]
    for start in range(0, len(bodies), 10):
        out = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body}
                                                             for i, body in enumerate(bodies[start:start + 10])])
        if out.get("Failed"):
            raise RuntimeError(f"{len(out['Failed'])} fold messages not queued")


def close(m: Mark) -> bool:
    """Remove the day's open mark unless a pane moved ``v`` since it was read."""
    try:
        ddb().delete_item(TableName=table(), Key=key(codec.mark_pk(m.scope), codec.mark_sk(m.scope, m.day)),
                          ConditionExpression="v = :v", ExpressionAttributeValues={":v": av(m.v)})
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# -- reading panes ------------------------------------------------------------------------------

def _range(scope: str, day: str, low: int, high: int | None, consistent: bool) -> Iterator[dict[str, Any]]:
    top = codec.pane_sk(high - 1) if high is not None else codec.pane_sk(10**codec.SEQ_DIGITS - 1)
    if high is not None and high <= low:
        return iter(())
    return query_items({"TableName": table(), "ConsistentRead": consistent,
                        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                        "ExpressionAttributeValues": {":pk": av(k.pk_pane(scope, day)),
                                                      ":a": av(codec.pane_sk(low)), ":b": av(top)}})


def panes(scope: str, day: str, low: int, high: int | None = None, consistent: bool = True) -> Iterator[Pane]:
    """The day's panes with sequence numbers in [low, high), in order, read page by page."""
    for item in _range(scope, day, low, high, consistent):
        seq = codec.pane_seq(str(item["sk"]))
        if seq is not None:
            yield codec.parse_pane(scope, day, seq, item)


def ids(scope: str, day: str, low: int, high: int) -> Iterator[str]:
    """The scan ids of the day's panes in [low, high), page by page (nothing else decoded)."""
    for item in _range(scope, day, low, high, True):
        yield from codec.pane_ids(item)


def count_panes(scope: str, day: str, low: int, high: int, limit: int) -> int:
    """How many of the day's panes lie in [low, high), counting up to ``limit`` (one small Query)."""
    if high <= low:
        return 0
    out = ddb().query(TableName=table(), ConsistentRead=True, Limit=limit, Select="COUNT",
                      KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
                      ExpressionAttributeValues={":pk": av(k.pk_pane(scope, day)), ":a": av(codec.pane_sk(low)),
                                                 ":b": av(codec.pane_sk(high - 1))})
    return int(out.get("Count", 0))


def any_pane_from(scope: str, day: str, seq: int, below: int | None = None) -> bool:
    """Whether the day has a pane numbered ``seq`` or more (and below ``below``)."""
    top = 10**codec.SEQ_DIGITS if below is None else below
    return count_panes(scope, day, seq, top, 1) > 0


def first_copies(new: Iterable[Scan], earlier_ids: Iterable[str]) -> list[Scan]:
    """The scans of ``new`` (in sequence order) that are the first copy of their scan: not seen
    earlier in ``new``, nor among ``earlier_ids`` (streamed, never held: memory follows ``new``)."""
    first: dict[str, Scan] = {}
    for s in new:
        first.setdefault(s.id, s)
    for scan_id in earlier_ids:
        first.pop(scan_id, None)
    return list(first.values())


def legacy_scans(scope: str, day: str) -> list[Scan]:
    """The scans of the day's panes written before sequence numbers (random hex keys), once each:
    what the compaction of that design had folded, or was still to fold, when this one took over."""
    items = query_items({"TableName": table(), "ConsistentRead": True,
                         "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                         "ExpressionAttributeValues": {":pk": av(k.pk_pane(scope, day)), ":a": av("0"),
                                                       ":b": av("g")}})
    return first_copies((s for item in items for s in codec.parse_pane(scope, day, 0, item).scans), ())


# -- the checkpoint --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every pane below ``ck`` is folded; ``stage``: a step folding [ck, stage) is under way
    (or crashed: the next one finishes it). ``exists`` False: no step ran yet."""

    ck: int = 0
    stage: int | None = None
    exists: bool = False


def checkpoint(scope: str, day: str) -> Checkpoint:
    with unavailable_on_throttle():
        item = from_item(ddb().get_item(TableName=table(), Key=key(k.pk_pane(scope, day), CHECKPOINT_SK),
                                        ConsistentRead=True).get("Item"))
    if item is None:
        return Checkpoint()
    stage = item.get("stage")
    return Checkpoint(ck=int(item.get("ck", 0)), stage=None if stage is None else int(stage), exists=True)


def create_checkpoint(scope: str, day: str) -> None:
    try:
        ddb().put_item(TableName=table(), Item={"pk": av(k.pk_pane(scope, day)), "sk": av(CHECKPOINT_SK),
                                                "ck": av(0), k.TTL: av(pane_ttl(day))},
                       ConditionExpression="attribute_not_exists(pk)")
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise


def _cas(scope: str, day: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
    try:
        ddb().update_item(TableName=table(), Key=key(k.pk_pane(scope, day), CHECKPOINT_SK),
                          UpdateExpression=expression, ConditionExpression=condition,
                          ExpressionAttributeValues={name: av(v) for name, v in values.items()})
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def begin(scope: str, day: str, ck: int, to: int) -> bool:
    """Announce the step [ck, to) before any of its writes. False: another step got there first."""
    return _cas(scope, day, "SET stage = :to", "ck = :ck AND attribute_not_exists(stage)", {":ck": ck, ":to": to})


def finish(scope: str, day: str, to: int) -> bool:
    """The step [ck, to) is written: the checkpoint moves to ``to``."""
    return _cas(scope, day, "SET ck = :to REMOVE stage", "stage = :to", {":to": to})


def skip_to(scope: str, day: str, ck: int, to: int) -> bool:
    """No pane in [ck, to): the checkpoint moves on without a step."""
    return _cas(scope, day, "SET ck = :to", "ck = :ck AND attribute_not_exists(stage)", {":ck": ck, ":to": to})


# -- readers: what no step has folded yet ------------------------------------------------------------

@dataclass
class Live:
    """The folds of a scope's open days that no step has written yet: per day, the panes from the
    checkpoint on, as increments from each sequence number an item may already include (an item
    written by a step under way carries that step's end as ``st``)."""

    days: dict[str, tuple[int, list[tuple[int, Scan]]]] = field(default_factory=dict)  # day -> (ck, [(seq, scan)])
    _folds: dict[tuple[str, int], dict[tuple[str, str], Counter]] = field(default_factory=dict)

    def _fold(self, day: str, since: int) -> dict[tuple[str, str], Counter]:
        cached = self._folds.get((day, since))
        if cached is None:
            cached = self._folds[(day, since)] = fold(s for seq, s in self.days[day][1] if seq >= since)
        return cached

    def merge(self, pk: str, stored: Iterable[dict[str, Any]], low: str, high: str) -> list[dict[str, Any]]:
        """The stored items of ``pk`` in [low, high] (as a Query returned them) with what no step
        folded into them yet added (items no step wrote yet made up)."""
        out: dict[str, dict[str, Any]] = {str(i["sk"]): dict(i) for i in stored}
        for day, (ck, _rows) in self.days.items():
            for (item_pk, sk), counter in self._fold(day, ck).items():  # every item touched from ck on
                if item_pk != pk or not low <= sk <= high:
                    continue
                item = out.get(sk)
                if item is None:
                    out[sk] = {"pk": pk, "sk": sk, k.TTL: counter.ttl, **counter.adds}
                    continue
                since = max(ck, int(item.get("st", 0)))  # a step under way may have written it already
                adds = counter.adds if since == ck else self._fold(day, since).get((pk, sk), Counter()).adds
                for name, n in adds.items():
                    item[name] = int(item.get(name, 0)) + n
        return [out[sk] for sk in sorted(out)]

    def unfolded(self, day: str, since: int) -> int:
        """Scans of ``day`` from sequence number ``since`` on (0 for a day with nothing unfolded)."""
        ck, rows = self.days.get(day, (0, []))
        return sum(1 for seq, _ in rows if seq >= max(ck, since))


def live(scope: str, now: int | None = None) -> Live:
    """The scope's open days, each read from its checkpoint on: the few minutes of panes the
    compaction has not reached yet, each scan once. A pane whose scans may have copies further
    back than ``LIVE_REACH`` (a scan the redirect sent again, a message that waited long) is left
    to the compaction, which checks the whole way back: a read stays bounded."""
    now = int(time.time()) if now is None else now
    reach = window_start(fences(), now - LIVE_REACH)
    out = Live()
    for day in open_days(scope):
        cp = checkpoint(scope, day)
        tail = [p for p in panes(scope, day, cp.ck) if p.window >= reach]
        if not tail:
            continue
        rows = [(p.seq, s) for p in tail for s in p.scans]
        first = {id(s) for s in first_copies((s for _, s in rows), ids(scope, day, min(p.window for p in tail), cp.ck))}
        out.days[day] = (cp.ck, [(seq, s) for seq, s in rows if id(s) in first])
    return out
