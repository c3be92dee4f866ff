"""Key builders for the single table: the one place that spells out keys.

See docs/data-model.md for every entity and access pattern.
"""

from __future__ import annotations

import math
import zlib

# Attribute names of the table and its indexes.
PK, SK = "pk", "sk"
LSI1 = "lsi1"  # same pk, sort by lsi1sk: codes newest first in a scope
LSI1SK = "lsi1sk"
GSI1 = "gsi1"  # sparse: due dates (codes in grace, plans in grace)
GSI1PK, GSI1SK = "gsi1pk", "gsi1sk"
TTL = "ttl"

PROFILE = "PROFILE"
GRACE_CODES = "DUE#CODE_GRACE"
GRACE_PLANS = "DUE#PLAN_GRACE"


def pk_user(user_id: str) -> str:
    return f"USER#{user_id}"


def pk_team(team_id: str) -> str:
    return f"TEAM#{team_id}"


def pk_email(email: str) -> str:
    return f"EMAIL#{email.strip().lower()}"


def sk_member(user_id: str) -> str:
    return f"MEMBER#{user_id}"


def sk_team_link(team_id: str) -> str:
    return f"TEAM#{team_id}"


def pk_apikey(token_hash: str) -> str:
    return f"APIKEY#{token_hash}"


def sk_key(key_id: str) -> str:
    return f"KEY#{key_id}"


def pk_rate(key_id: str, day: str) -> str:
    return f"RATE#{key_id}#{day}"


def sk_code(code_id: str) -> str:
    return f"CODE#{code_id}"


def lsi_code(created_ns: int, code_id: str) -> str:
    """Codes sort newest first by creation time in nanoseconds (ties within a second keep their order)."""
    return f"CODE#{created_ns:020d}#{code_id}"


def pk_short(shortcode: str) -> str:
    return f"SHORT#{shortcode}"


def pk_history(code_id: str) -> str:
    return f"HIST#{code_id}"


def sk_history(at: int, suffix: str) -> str:
    return f"{at:012d}#{suffix}"


def sk_group(group_id: str) -> str:
    return f"GROUP#{group_id}"


def sk_group_name(name: str) -> str:
    return f"GROUPNAME#{name.strip().lower()}"


def sk_webhook(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


def pk_deliveries(webhook_id: str) -> str:
    return f"WHDLV#{webhook_id}"


def sk_delivery(at: int, delivery_id: str) -> str:
    return f"{at:012d}#{delivery_id}"


def pk_event(event_id: str) -> str:
    return f"EVENT#{event_id}"


def pk_replay(event_id: str) -> str:
    return f"REPLAY#{event_id}"


def pk_code_agg(code_id: str) -> str:
    return f"AGG#{code_id}"


def pk_scope_agg(scope: str) -> str:
    return f"SAGG#{scope}"


def sk_day(day: str) -> str:
    return f"D#{day}"


def sk_hour(hour: str) -> str:
    return f"H#{hour}"


CODES_PER_SHARD = 16  # codes whose day counters share an item, at most on average (~41 bytes each: under 1 KB)
MAX_CODES_DAY_SHARDS = 1024
DEFAULT_CODES_DAY_SHARDS = 8  # for scans whose message does not say how many codes the scope has


def codes_day_shards(codes: int) -> int:
    """How many items hold a scope's per-code day counters: the power of two that keeps them at
    ≤ 16 codes each on average (100 codes: 8, an agency's 10,000: 1,024), so that an update, billed
    per KB of the item, stays about one write unit. Readers take every shard of a day whatever
    the layout, so scans of one day may use several (docs/analytics.md)."""
    if codes <= 0:
        return DEFAULT_CODES_DAY_SHARDS
    return min(MAX_CODES_DAY_SHARDS, 1 << (math.ceil(codes / CODES_PER_SHARD) - 1).bit_length())


def sk_codes_day(day: str, code_id: str, shards: int = DEFAULT_CODES_DAY_SHARDS) -> str:
    """The shard of a scope's day that holds ``code_id``'s counter (``k_{code_id}``)."""
    return f"K#{day}#{zlib.crc32(code_id.encode()) % shards}"


def codes_day_range(first_day: str, last_day: str) -> tuple[str, str]:
    """Sort-key bounds that take in every shard of every day from first to last."""
    return f"K#{first_day}", f"K#{last_day}#~"


def pk_pending(shard: int) -> str:
    """Scans the redirect could not enqueue (SQS down), waiting for the aggregator."""
    return f"SCANPENDING#{shard}"


def sk_month(month: str) -> str:
    return f"M#{month}"


def day_of(sk: str) -> str | None:
    """The UTC day of a day-scoped aggregate sort key (``D#``, ``H#``, ``K#``), else None (``M#``)."""
    return sk[2:12] if sk[:2] in ("D#", "H#", "K#") else None


def pk_pane(scope: str, day: str) -> str:
    """A scope's panes of one UTC day, sorted by sequence number, and the day's checkpoint
    (docs/analytics.md; the sort keys: ``qrpro.domain.scan_codec``)."""
    return f"PANE#{scope}#{day}"


SEQ = "SEQ"  # the panes' sequence counter (pk and sk) ...
FENCES = "FENCES"  # ... and the sort key of its fences


def pk_limit(code_id: str) -> str:
    """A code's scan-limit counter (routing ``max_scans``), updated by the redirect."""
    return f"LIMIT#{code_id}"


def due_sk(at: int, item_id: str) -> str:
    return f"{at:012d}#{item_id}"
