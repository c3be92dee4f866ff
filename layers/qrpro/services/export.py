"""The data export, the use case of docs/api.md section 11: every code of a
scope (grace and expired included) and its daily aggregates over the plan's
retention window, written as one ZIP into the export bucket.

One pass: codes are read page by page (pattern 5 without filters) and each
code's days once (the three rollup files come from the same pass); CSV rows are
compressed as they are made and streamed to S3 (``qrpro.data.exports``). An
export small enough is also answered inline. A failed export leaves nothing in
the bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from qrpro.config import settings
from qrpro.data import codes as code_data
from qrpro.data import panes
from qrpro.data.exports import S3Sink, daily, object_key, presign
from qrpro.domain.clock import day_bucket, days_back
from qrpro.domain.errors import ServiceUnavailable
from qrpro.domain.export_zip import RollupStats, write_export
from qrpro.domain.plans import Plan

INLINE_MAX = 4 * 1024 * 1024  # answered inline up to this (base64 stays under Lambda's 6 MB response)


@dataclass(frozen=True)
class Export:
    key: str
    filename: str
    size: int
    codes: int
    rollup: RollupStats  # rows of each rollup file, and the total number of scans
    body: bytes | None  # the whole ZIP when it is small enough to answer inline
    url: str  # presigned GET, valid ``qrpro.data.exports.URL_TTL`` seconds
    expires_at: int


def export(scope: str, plan: Plan, now: int) -> Export:
    """Build the export of ``scope`` into the export bucket; see the module docstring."""
    bucket = settings().export_bucket
    if not bucket:
        raise ServiceUnavailable("exports are not configured (EXPORT_BUCKET)")
    key = object_key(scope, now)
    filename = f"qrpro-export-{day_bucket(now)}.zip"
    window = days_back(now, plan.retention_days)
    live = panes.live(scope)  # the days still open, from their panes: read once for the whole export
    scans = code_data.scans_30d(scope, now, live)
    codes = (code.public(scans.get(code.id, 0)) for code in code_data.all_items(scope))
    sink = S3Sink(bucket, key, filename)
    try:
        stats = write_export(sink, scope, codes, lambda refs: daily(refs, window[0], window[-1], now, live),
                             now)
        data = sink.finish()
        url, expires_at = presign(key, now)
    except BaseException:
        sink.abort()
        raise
    body = data if data is not None and len(data) <= INLINE_MAX else None
    return Export(key, filename, sink.pos, stats.codes, stats.rollup, body, url, expires_at)
