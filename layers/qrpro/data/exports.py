"""The data export (docs/api.md section 11, access pattern 31): every code of a
scope and its daily aggregates, streamed as a ZIP into S3.

Memory stays bounded whatever the account's size: codes are read page by page
(pattern 5 without filters), each code's aggregates with one Query (pattern
15), a few codes ahead in parallel and once only (the three rollup files come
from the same pass); CSV rows are compressed as they are made and the ZIP goes
to S3 in 8 MiB multipart parts. Only a small export (one part) is ever whole in
memory, and that is the one answered inline.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data import codes as code_data
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import av, table, unavailable_on_throttle
from qrpro.domain.clock import day_bucket, days_back
from qrpro.domain.errors import ServiceUnavailable
from qrpro.domain.export_zip import CodeRef, DayCounts, RollupStats, write_export
from qrpro.domain.plans import Plan

PART_SIZE = 8 * 1024 * 1024  # multipart part size (S3: ≥ 5 MiB but the last)
INLINE_MAX = 4 * 1024 * 1024  # answered inline up to this (base64 stays under Lambda's 6 MB response)
URL_TTL = 15 * 60  # presigned URL validity
PREFETCH = 16  # codes whose aggregates are read ahead, in parallel
WORKERS = 8
CONTENT_TYPE = "application/zip"


@dataclass(frozen=True)
class Export:
    key: str
    filename: str
    size: int
    codes: int
    rollup: RollupStats  # rows of each rollup file, and the total number of scans
    body: bytes | None  # the whole ZIP when it is small enough to answer inline
    url: str  # presigned GET, valid URL_TTL seconds
    expires_at: int


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """S3 failures (after botocore's retries) are ``503 unavailable``: nothing usable was stored."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise ServiceUnavailable("the export store did not answer; retry shortly") from err


class S3Sink(io.RawIOBase):
    """A write-only, unseekable stream that becomes one S3 object.

    Bytes collect in a buffer; once it passes ``PART_SIZE`` a multipart upload starts and each full
    part goes up as it is ready. ``finish`` sends the rest (one PutObject when the object fits in a
    part) and returns the bytes when they were never uploaded in parts. ``abort`` drops a started
    upload, so a failed export leaves no parts behind.
    """

    def __init__(self, bucket: str, key: str, filename: str) -> None:
        super().__init__()
        self.bucket, self.key, self.filename = bucket, key, filename
        self.buf = bytearray()
        self.pos = 0
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.pos

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.buf += view
        self.pos += len(view)
        while len(self.buf) >= PART_SIZE:
            self._upload_part(bytes(self.buf[:PART_SIZE]))
            del self.buf[:PART_SIZE]
        return len(view)

    def _meta(self) -> dict[str, Any]:
        return {"Bucket": self.bucket, "Key": self.key, "ContentType": CONTENT_TYPE,
                "ContentDisposition": f'attachment; filename="{self.filename}"'}

    def _upload_part(self, data: bytes) -> None:
        with store_errors():
            self._send_part(data)

    def _send_part(self, data: bytes) -> None:
        client = s3()
        if self.upload_id is None:
            self.upload_id = client.create_multipart_upload(**self._meta())["UploadId"]
        number = len(self.parts) + 1
        out = client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
                                 Body=data)
        self.parts.append({"PartNumber": number, "ETag": out["ETag"]})

    def finish(self) -> bytes | None:
        client = s3()
        if self.upload_id is None:
            data = bytes(self.buf)
            with store_errors():
                client.put_object(Body=data, **self._meta())
            return data
        if self.buf or not self.parts:
            self._upload_part(bytes(self.buf))
            self.buf.clear()
        with store_errors():
            client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                             MultipartUpload={"Parts": self.parts})
        return None

    def abort(self) -> None:
        if self.upload_id is not None:
            s3().abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            self.upload_id = None


def object_key(scope: str, now: int) -> str:
    kind, _, ident = scope.partition("#")
    return f"exports/{kind.lower()}/{ident}/{day_bucket(now)}/{uuid.uuid4()}.zip"


@cache
def _s3(endpoint: str | None) -> Any:
    """The export's S3 client: SigV4 presigned URLs (botocore would sign with the legacy SigV2 query
    string in us-east-1) and a read timeout that lets CompleteMultipartUpload of a big ZIP finish
    (S3 can take seconds). Built lazily, one per endpoint (tests move it)."""
    return boto3.client("s3", config=Config(signature_version="s3v4", connect_timeout=2, read_timeout=60,
                                            retries={"mode": "standard", "max_attempts": 3}))


def s3() -> Any:
    return _s3(os.environ.get("AWS_ENDPOINT_URL_S3"))


def presign(key: str, now: int) -> tuple[str, int]:
    with store_errors():
        url = s3().generate_presigned_url(
            "get_object", Params={"Bucket": settings().export_bucket, "Key": key}, ExpiresIn=URL_TTL)
    return str(url), now + URL_TTL


# -- reads ---------------------------------------------------------------------------------------------

def _counts(raw: dict[str, Any]) -> tuple[int, dict[str, int], dict[str, int], dict[str, int]]:
    total, countries, devices, targets = 0, {}, {}, {}
    for name, value in raw.items():
        if "N" not in value:
            continue
        if name == "total":
            total = int(value["N"])
        elif name.startswith("c_"):
            countries[name[2:]] = int(value["N"])
        elif name.startswith("d_"):
            devices[name[2:]] = int(value["N"])
        elif name.startswith("t_"):
            targets[name[2:]] = int(value["N"])
    return total, countries, devices, targets


def code_days(code: CodeRef, first: str, last: str, now: int) -> list[DayCounts]:
    """A code's daily aggregates from ``first`` to ``last`` (pattern 15), oldest first. Items whose TTL
    has passed but that DynamoDB has not deleted yet are left out (the analytics reads' rule)."""
    params: dict[str, Any] = {
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":pk": av(k.pk_code_agg(code.id)), ":a": av(k.sk_day(first)),
                                      ":b": av(k.sk_day(last))}}
    out: list[DayCounts] = []
    while True:
        with unavailable_on_throttle():
            page = ddb().query(**params)
        for raw in page.get("Items", []):
            ttl = raw.get(k.TTL, {}).get("N")
            if ttl is not None and int(ttl) < now:
                continue
            total, countries, devices, targets = _counts(raw)
            out.append(DayCounts(code.id, code.shortcode, code.label, raw["sk"]["S"][2:], total, countries,
                                 devices, targets))
        if "LastEvaluatedKey" not in page:
            return out
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def daily(codes: Iterable[CodeRef], first: str, last: str, now: int) -> Iterator[DayCounts]:
    """Every code's days, in the order of ``codes``; up to ``PREFETCH`` codes are read ahead in
    parallel, so at most that many codes' aggregates are in memory at once."""
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="export") as pool:
        window: deque[Future[list[DayCounts]]] = deque()
        for code in codes:
            window.append(pool.submit(code_days, code, first, last, now))
            if len(window) >= PREFETCH:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()


def export(scope: str, plan: Plan, now: int) -> Export:
    """Build the export of ``scope`` into the export bucket; see the module docstring."""
    bucket = settings().export_bucket
    if not bucket:
        raise ServiceUnavailable("exports are not configured (EXPORT_BUCKET)")
    key = object_key(scope, now)
    filename = f"qrpro-export-{day_bucket(now)}.zip"
    window = days_back(now, plan.retention_days)
    scans = code_data.scans_30d(scope, now)
    codes = (code.public(scans.get(code.id, 0)) for code in code_data.all_items(scope))
    sink = S3Sink(bucket, key, filename)
    try:
        stats = write_export(sink, scope, codes, lambda refs: daily(refs, window[0], window[-1], now), now)
        data = sink.finish()
        url, expires_at = presign(key, now)
    except BaseException:
        with contextlib.suppress(ClientError, BotoCoreError):
            sink.abort()
        raise
    body = data if data is not None and len(data) <= INLINE_MAX else None
    return Export(key, filename, sink.pos, stats.codes, stats.rollup, body, url, expires_at)
