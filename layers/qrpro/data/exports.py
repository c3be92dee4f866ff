"""The export's storage (docs/api.md section 11, access pattern 31): the S3
object a ZIP streams into, its key and presigned URL, and the daily aggregates
of each code (pattern 15). The use case is ``qrpro.services.export``.

Memory stays bounded whatever the account's size: each code's aggregates are
read with one Query, a few codes ahead in parallel; the ZIP goes to S3 in
8 MiB multipart parts, so only a small export (one part) is ever whole in
memory.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data.panes import Live
from qrpro.data.table import av, query_items, table
from qrpro.domain.clock import day_bucket
from qrpro.domain.errors import ServiceUnavailable
from qrpro.domain.export_zip import CodeRef, DayCounts

PART_SIZE = 8 * 1024 * 1024  # multipart part size (S3: ≥ 5 MiB but the last)
URL_TTL = 15 * 60  # presigned URL validity
PREFETCH = 16  # codes whose aggregates are read ahead, in parallel
WORKERS = 8
CONTENT_TYPE = "application/zip"


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
        """Best effort: the export is failing already (the bucket's lifecycle rule drops what this misses)."""
        if self.upload_id is not None:
            with contextlib.suppress(ClientError, BotoCoreError):
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

def _counts(item: dict[str, Any]) -> dict[str, dict[str, int]]:
    """An aggregate item's breakdowns by their prefix (``c_`` countries, ``d_`` devices, ``t_``
    targets, ``o_`` OS families)."""
    out: dict[str, dict[str, int]] = {"c_": {}, "d_": {}, "t_": {}, "o_": {}}
    for name, value in item.items():
        part = out.get(name[:2])
        if part is not None:
            part[name[2:]] = int(value)
    return out


def code_days(code: CodeRef, first: str, last: str, now: int, live: Live) -> list[DayCounts]:
    """A code's daily aggregates from ``first`` to ``last`` (pattern 15), oldest first, with what
    the compaction has not folded yet (``live``). Items whose TTL has passed but that DynamoDB has
    not deleted yet are left out (the analytics reads' rule)."""
    pk, low, high = k.pk_code_agg(code.id), k.sk_day(first), k.sk_day(last)
    stored = query_items({"TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                          "ExpressionAttributeValues": {":pk": av(pk), ":a": av(low), ":b": av(high)}})
    out: list[DayCounts] = []
    for item in live.merge(pk, stored, low, high):
        if int(item.get(k.TTL) or now) < now:
            continue
        parts = _counts(item)
        out.append(DayCounts(code.id, code.shortcode, code.label, str(item["sk"])[2:], int(item.get("total", 0)),
                             parts["c_"], parts["d_"], parts["t_"], parts["o_"]))
    return out


def daily(codes: Iterable[CodeRef], first: str, last: str, now: int, live: Live) -> Iterator[DayCounts]:
    """Every code's days, in the order of ``codes``; up to ``PREFETCH`` codes are read ahead in
    parallel, so at most that many codes' aggregates are in memory at once."""
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="export") as pool:
        window: deque[Future[list[DayCounts]]] = deque()
        for code in codes:
            window.append(pool.submit(code_days, code, first, last, now, live))
            if len(window) >= PREFETCH:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()
