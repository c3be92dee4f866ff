"""The redirect at ``{SHORT_BASE_URL}/{shortcode}``: what every printed code hits.

Behind CloudFront → Lambda function URL (payload 2.0: ``rawPath``,
``requestContext.http.method``, lowercased headers, only those of the
distribution's origin request policy), on the local stack as in AWS.

Hot path: no pydantic, no router, no Powertools. Lookups are cached in memory
for ``CACHE_SECONDS`` (a changed destination, status or routing shows within
5 s), so a hot code costs one AWS call per scan: the SQS enqueue. A code with a
scan limit (routing ``max_scans``) costs one more: the conditional update of its
counter, which keeps the limit exact under any burst. Of the
request, only the country header and the device and OS classes derived from
the User-Agent are read (routing, docs/analytics.md); the country, the device
and OS classes and the routing target are kept; nothing of it is logged. A bot
or link preview is redirected like anyone and counted apart (``bots``).

A scan that SQS did not take is counted in CloudWatch (``ScansParked``: kept in
DynamoDB for the scheduled drain; ``ScansBuffered``: kept only in this
container's memory) by one Embedded Metric Format line on stdout: a count,
no visitor data, no client call and no import on the hot path.
"""

from __future__ import annotations

import random
import time
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from qrpro.data import edge
from qrpro.domain.devices import country, device, is_bot, os_class, os_family
from qrpro.domain.redirects import Outcome, Target, answer
from qrpro.domain.shortcodes import is_shortcode

CACHE_SECONDS = 4.0
CACHE_MAX = 50_000

_cache: dict[str, tuple[float, Any]] = {}

# EMF: CloudWatch turns this log line into a metric (docs/operations.md has the alarms on it).
METRIC_NAMESPACE, METRIC_SERVICE = "QRPro", "qrpro-redirect"
METRICS = {"pending": "ScansParked", "buffered": "ScansBuffered"}  # by edge.enqueue's answer
_EMF = ('{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"' + METRIC_NAMESPACE + '",'
        '"Dimensions":[["service"]],"Metrics":[{"Name":"%s","Unit":"Count"}]}]},'
        '"service":"' + METRIC_SERVICE + '","%s":1}')


def count_unqueued(status: str) -> None:
    """One EMF line when ``edge.enqueue`` did not reach SQS (``queued`` costs nothing)."""
    name = METRICS.get(status)
    if name is not None:
        print(_EMF % (time.time() * 1000, name, name), flush=True)


def _cached(name: str, load: Any) -> Any:
    """``load()`` at most once per ``CACHE_SECONDS`` per name; on a failed read,
    the last known value (stale-if-error) or the error."""
    clock = time.monotonic()
    hit = _cache.get(name)
    if hit is not None and clock - hit[0] < CACHE_SECONDS:
        return hit[1]
    try:
        value = load()
    except (ClientError, BotoCoreError):
        if hit is not None:
            return hit[1]
        raise
    if len(_cache) >= CACHE_MAX:
        _cache.clear()
    _cache[name] = (clock, value)
    return value


def _page(status: int, title: str, text: str, head: bool, extra: dict[str, str] | None = None) -> dict[str, Any]:
    body = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>" + title + "</title></head>"
            "<body><h1>" + title + "</h1><p>" + text + "</p></body></html>")
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
               "X-Robots-Tag": "noindex", **(extra or {})}
    return {"statusCode": status, "headers": headers, "body": "" if head else body}


def not_found(head: bool) -> dict[str, Any]:
    return _page(404, "Not found", "There is no QR code at this address.", head)


def paused(head: bool) -> dict[str, Any]:
    return _page(404, "This code is paused", "This QR code is paused by its owner. Try again later.", head)


def gone(head: bool) -> dict[str, Any]:
    return _page(410, "This code has expired", "This QR code is no longer active.", head)


def not_yet(head: bool) -> dict[str, Any]:
    return _page(404, "Not active yet", "This QR code is not active yet. Try again later.", head)


def ended(head: bool) -> dict[str, Any]:
    return _page(410, "This code has ended", "This QR code has ended and no longer leads anywhere.", head)


def unavailable(head: bool) -> dict[str, Any]:
    return _page(503, "Try again", "This QR code cannot be opened right now. Please try again in a moment.",
                 head, {"Retry-After": "1"})


def redirect(url: str) -> dict[str, Any]:
    return {"statusCode": 302, "headers": {"Location": url, "Cache-Control": "no-store"}, "body": ""}


def _request(event: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    method = str(event["requestContext"]["http"]["method"]).upper()
    path = str(event.get("rawPath") or "/")
    headers = event.get("headers") or {}
    return method, path, headers


_PAGES = {Outcome.PAUSED: paused, Outcome.GONE: gone, Outcome.NOT_FOUND: not_found, Outcome.NOT_YET: not_yet,
          Outcome.ENDED: ended}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method, path, headers = _request(event)
    head = method == "HEAD"
    if method not in ("GET", "HEAD"):
        return _page(405, "Method not allowed", "Open this address in a browser.", head, {"Allow": "GET, HEAD"})
    shortcode = path.strip("/")
    if not is_shortcode(shortcode):
        return not_found(head)
    now = int(time.time())
    try:
        target = _cached("S" + shortcode, lambda: edge.lookup_short(shortcode))
        if target is None:
            return not_found(head)
        account = _cached("P" + target.scope, lambda: edge.lookup_plan(target.scope))
    except (ClientError, BotoCoreError):
        return unavailable(head)
    user_agent = headers.get("user-agent")  # read for its classes here, then discarded
    where, kind, family = country(headers.get("cloudfront-viewer-country")), device(user_agent), os_family(user_agent)
    bot = is_bot(user_agent)
    counted = not head and account is not None and not bot
    try:
        decided = answer(target, account, now, where, kind, os_class(family), random.random(),
                         partial(_claim if counted else _peek, target))
    except (ClientError, BotoCoreError):  # the scan limit's counter did not answer: never a place not counted
        return unavailable(head)
    if decided.location is None:
        return _PAGES[decided.outcome](head)
    if not head and account is not None:  # a scan, or a bot or link preview: counted apart (bots)
        count_unqueued(edge.enqueue(edge.scan_message(target.code_id, target.scope, account.plan, now, where, kind,
                                                      decided.target or "default", account.codes, family, bot)))
    return redirect(decided.location)


def _claim(target: Target, max_scans: int) -> bool:
    """A counted scan of a code with a scan limit: its place under the limit, taken once. A code
    found at its limit stays so in this container for ``CACHE_SECONDS`` (no write per scan)."""
    full = "F" + target.code_id
    hit = _cache.get(full)
    if hit is not None and hit[1] == max_scans and time.monotonic() - hit[0] < CACHE_SECONDS:
        return False
    if edge.claim_place(target.code_id, max_scans, target.scans_total):
        return True
    _cache[full] = (time.monotonic(), max_scans)
    return False


def _peek(target: Target, max_scans: int) -> bool:
    """A HEAD or a bot: routed as a counted scan would be now, without taking a place."""
    count = _cached("L" + target.code_id, lambda: edge.limit_count(target.code_id, target.scans_total))
    return bool(count < max_scans)
