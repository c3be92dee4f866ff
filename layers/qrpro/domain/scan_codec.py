"""Every form a scan takes between the redirect and the aggregates, in one module:
the queue message the redirect sends, the rows of a pane the aggregator writes,
the open marks that name a scope's days still to fold, and the fold job the
fan-out sends the compaction. Standard library only (the redirect imports it on
its hot path). docs/analytics.md, "How a scan is counted", tells the story.

What a scan keeps (docs/api.md section 7, "Privacy", and 16.3): a random id,
its code and scope, the plan, the UTC hour (a pane keeps only the day for plans
without hourly analytics), the country, the device and OS classes, the routing
target, whether it was a bot or link preview (counted apart), and how many
codes the scope has (the layout of its per-code day counters). Nothing of the
request is kept, and no time finer than the hour.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qrpro.domain.devices import DEVICES, OS_FAMILIES, OTHER, UNKNOWN, country

DEFAULT_TARGET = "default"
NO_HOUR = "-"  # a pane row's hour for plans that keep no hourly aggregates
TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # scan and code ids: no separator a pane row uses
_TARGET = re.compile(r"^(?:default|fallback|(?:rule|split):\d{1,2})$")
MAX_CODES = 10**7


@dataclass(slots=True)
class Scan:
    """One counted scan. ``resent``: the redirect sent it again after a send that may have
    been accepted (so a copy may exist anywhere in its hour). ``sent_ms``: when SQS took the
    message (its ``SentTimestamp``; never stored). ``parked``: the key of the item it was
    parked in while SQS failed."""

    id: str
    code_id: str
    scope: str
    plan: str
    hour: str  # YYYY-MM-DD-HH
    country: str
    device: str
    target: str = DEFAULT_TARGET
    codes: int = 0  # the scope's codes when scanned: the layout of its K# shards (0: not known)
    os: str = OTHER  # the OS family (devices.OS_FAMILIES)
    bot: bool = False  # a bot or link preview: counted apart (``bots``), never in the totals
    resent: bool = False
    sent_ms: int | None = field(default=None, compare=False)
    message_id: str = field(default="", repr=False, compare=False)
    parked: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def day(self) -> str:
        return self.hour[:10]

    @property
    def month(self) -> str:
        return self.hour[:7]


# -- the queue message (redirect -> scans queue -> aggregator) ------------------------------------

def message(scan: Scan) -> str:
    """The message body: compact JSON of what a scan keeps (``t`` target, ``n`` the scope's
    codes, ``o`` the OS family, ``b`` a bot, ``r`` resent)."""
    body: dict[str, Any] = {"id": scan.id, "code_id": scan.code_id, "scope": scan.scope, "plan": scan.plan,
                            "hour": scan.hour, "country": scan.country, "device": scan.device,
                            "t": scan.target, "n": scan.codes, "o": scan.os}
    if scan.bot:
        body["b"] = 1
    if scan.resent:
        body["r"] = 1
    return json.dumps(body, separators=(",", ":"))


def resent(body: str) -> str:
    """The same message marked as sent again (its first send may have reached SQS)."""
    data = json.loads(body)
    data["r"] = 1
    return json.dumps(data, separators=(",", ":"))


def parse_message(body: str, message_id: str = "", sent_ms: int | None = None,
                  parked: tuple[str, str] | None = None) -> Scan | None:
    """A message body as a Scan, or None if it is not one of ours. Older messages (with a
    shortcode ``s`` or a limit flag ``m``, or without a target) are read as well."""
    try:
        data = json.loads(body)
        hour = str(data["hour"])
        datetime.strptime(hour, "%Y-%m-%d-%H")
        scan = Scan(id=str(data["id"]), code_id=str(data["code_id"]), scope=str(data["scope"]),
                    plan=str(data["plan"]), hour=hour, country=country(data.get("country")),
                    device=data["device"] if data.get("device") in DEVICES else UNKNOWN,
                    target=_target(data.get("t")), codes=_codes(data.get("n")),
                    os=data["o"] if data.get("o") in OS_FAMILIES else OTHER, bot=data.get("b") == 1,
                    resent=data.get("r") == 1,
                    sent_ms=sent_ms, message_id=message_id, parked=parked)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not TOKEN.match(scan.id) or not TOKEN.match(scan.code_id) or not scan.scope.startswith(("USER#", "TEAM#")):
        return None
    if not TOKEN.match(scan.plan):
        return None
    return scan


def _target(value: Any) -> str:
    return value if isinstance(value, str) and _TARGET.match(value) else DEFAULT_TARGET


def _codes(value: Any) -> int:
    return value if type(value) is int and 0 < value <= MAX_CODES else 0


# -- panes (the aggregator's writes: one item per scope, day and plan of a batch) --------------------

PANE_PREFIX = "#"  # pane sort keys: "#" + the sequence number; the pane's checkpoint sorts before them
SEQ_DIGITS = 15


def pane_sk(seq: int) -> str:
    return f"{PANE_PREFIX}{seq:0{SEQ_DIGITS}d}"


def pane_seq(sk: str) -> int | None:
    """A pane's sequence number, or None for anything else (the checkpoint, a pane of the design
    before sequence numbers: a random hex key)."""
    return int(sk[1:]) if sk.startswith(PANE_PREFIX) and sk[1:].isdigit() else None


@dataclass(frozen=True, slots=True)
class Pane:
    """One pane: ``seq`` orders it among the scope's day; an earlier copy of any of its scans
    can only be in a pane with a sequence number of at least ``window``."""

    seq: int
    window: int
    scans: list[Scan]


def pane_attributes(scans: list[Scan], window: int, hourly: bool) -> dict[str, str | int]:
    """A pane's attributes (scans of one scope, day and plan): ``p`` the plan, ``c`` one line per
    code (id and the scope's code count), ``s`` one row per scan (id, code line, country, device,
    target, the hour or ``-``, the OS family, ``b`` for a bot or ``-``), ``w`` the window."""
    codes = sorted({(s.code_id, s.codes) for s in scans})
    line = {c: i for i, c in enumerate(codes)}
    rows = [" ".join((s.id, str(line[(s.code_id, s.codes)]), s.country, s.device, s.target,
                      s.hour[11:] if hourly else NO_HOUR, s.os, "b" if s.bot else "-")) for s in scans]
    return {"p": scans[0].plan, "c": "\n".join(f"{cid} {n}" for cid, n in codes), "s": "\n".join(rows),
            "w": window}


def parse_pane(scope: str, day: str, seq: int, attrs: Mapping[str, Any]) -> Pane:
    """A pane's scans (also a pane of the design before sequence numbers: its code lines
    carried the shortcode, its rows a limit flag and no OS)."""
    codes = [str(line).split(" ") for line in str(attrs["c"]).split("\n")]
    plan = str(attrs["p"])
    scans = []
    for row in str(attrs["s"]).split("\n"):
        fields = row.split(" ")
        scan_id, i, place, kind, target, hh = fields[:6]
        family, bot = (fields[6], fields[7] == "b") if len(fields) == 8 else (OTHER, False)
        code = codes[int(i)]
        scans.append(Scan(id=scan_id, code_id=code[0], scope=scope, plan=plan,
                          hour=f"{day}-{'00' if hh == NO_HOUR else hh}", country=place, device=kind,
                          target=target, codes=int(code[-1]), os=family, bot=bot))
    return Pane(seq=seq, window=int(attrs.get("w", 0)), scans=scans)


def pane_ids(attrs: Mapping[str, Any]) -> Iterator[str]:
    """The scan ids of a pane, without decoding the rest."""
    for row in str(attrs["s"]).split("\n"):
        yield row.partition(" ")[0]


# -- open marks: a scope's days with panes still to fold ---------------------------------------------

OPEN_SHARDS = 8


def mark_pk(scope: str) -> str:
    """Open marks are spread over a few partitions (the fan-out reads them all)."""
    return f"OPEN#{zlib.crc32(scope.encode()) % OPEN_SHARDS}"


def mark_sk(scope: str, day: str) -> str:
    return f"{scope}#{day}"


def parse_mark_sk(sk: str) -> tuple[str, str]:
    scope, _, day = sk.rpartition("#")
    return scope, day


# -- the fold jobs (fan-out -> compaction queue -> compaction) --------------------------------------

@dataclass(frozen=True, slots=True)
class Job:
    """Fold the scope's day up to (not including) sequence number ``fence``, which the fan-out
    read at ``at`` (unix seconds: how far behind the fold is, once done)."""

    scope: str
    day: str
    fence: int
    at: int = 0


def jobs(batch: list[Job]) -> str:
    """One message for several days' jobs under the same fence."""
    return json.dumps({"fence": batch[0].fence, "at": batch[0].at, "days": [[j.scope, j.day] for j in batch]},
                      separators=(",", ":"))


def parse_jobs(body: str) -> list[Job] | None:
    """The jobs of a message, or None if it is not one of ours."""
    try:
        data = json.loads(body)
        fence, at = int(data["fence"]), int(data.get("at", 0))
        out = [Job(scope=str(scope), day=str(day), fence=fence, at=at) for scope, day in data["days"]]
        for j in out:
            datetime.strptime(j.day, "%Y-%m-%d")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    ok = fence >= 0 and all(j.scope.startswith(("USER#", "TEAM#")) for j in out)
    return out if ok else None
