"""The data export (docs/api.md section 11): time and peak memory of the big case.

Run as a plain script from the repository root:

    .venv/bin/python benchmarks/bench_export.py                 # both cases, full size
    .venv/bin/python benchmarks/bench_export.py --codes 1000    # a smaller "big" case

Case 1, "stream": an account with ``--codes`` codes (10,000) and ``--days``
(1,095 = three years) of daily aggregates for EVERY code on EVERY day, each
with ``--countries`` countries (each at or over the noise floor, so none is
folded) and ``--devices`` devices (2 + 2: five rollup rows per code-day, one in
scans.csv and two in each breakdown file). The codes and aggregates come from an in-memory
generator in the shape the data layer reads them in, so this measures the
export's own pipeline: CSV formatting, ZIP deflate and the S3 multipart
upload to moto's server (a separate process, so its copy of the object is not
counted). Seeding 11 million aggregates into DynamoDB Local is not practical
on a laptop; case 2 measures the reads.

Case 2, "dynamodb": the real ``qrpro.services.export.export`` (Query per code,
read ahead in parallel) against DynamoDB Local with ``--ddb-codes`` codes x
``--ddb-days`` days, seeded first, then exported to moto's S3.

Each case runs in a fresh interpreter: ``RSS peak`` is the process's
ru_maxrss (interpreter, boto3 and imports included), ``RSS base`` the same
just before the export starts; their difference is what the export held.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
BUCKET = "bench-exports"
NOW = 1_775_001_600  # 2026-04-01T00:00:00Z
COUNTRIES = ["US", "CA", "GB", "DE", "FR", "JP", "BR", "IN", "XX"]
DEVICES = ["mobile", "desktop", "tablet", "unknown"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _code(i: int) -> dict[str, Any]:
    cid = f"{i:08x}-0000-4000-8000-{i:012x}"
    return {"id": cid, "shortcode": f"b{i:06d}", "short_url": f"https://aqr.net/b{i:06d}",
            "url": f"https://example.com/campaigns/2026/landing-page-{i}?utm_source=print&utm_medium=qr",
            "label": f"Poster {i} - lobby", "tag": "print,q2", "qr_type": "url",
            "style_json": '{"dark": "#112233", "light": "#ffffff", "error": "q"}', "logo_key": "instagram",
            "frame_style": "scan-me", "frame_text": "SCAN ME", "group_id": None, "status": "active",
            "grace_until": None, "scans_30d": 1234, "created_at": NOW - 3 * 365 * 86_400, "updated_at": NOW}


def case_stream(args: argparse.Namespace) -> dict[str, Any]:
    from qrpro.data import exports
    from qrpro.data.aws import client
    from qrpro.domain.clock import days_back
    from qrpro.domain.export_zip import CodeRef, DayCounts, write_export

    days = days_back(NOW, args.days)
    countries, devices = COUNTRIES[:args.countries], DEVICES[:args.devices]

    def codes() -> Iterator[dict[str, Any]]:
        for i in range(args.codes):
            yield _code(i)

    def daily(refs: list[CodeRef]) -> Iterator[DayCounts]:
        for n, (cid, sc, label) in enumerate(refs):
            for j, day in enumerate(days):
                by_country = {c: 5 + (n + j + m) % 7 for m, c in enumerate(countries)}  # all at or over the floor
                by_device = dict(zip(devices, _split(sum(by_country.values()), len(devices)), strict=True))
                yield DayCounts(cid, sc, label, day, sum(by_country.values()), by_country, by_device)

    client("s3").create_bucket(Bucket=BUCKET)
    sink = exports.S3Sink(BUCKET, "exports/bench/stream.zip", "stream.zip")
    base = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    stats = write_export(sink, "USER#bench", codes(), daily, NOW)
    inline = sink.finish()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    stored = client("s3").head_object(Bucket=BUCKET, Key="exports/bench/stream.zip")["ContentLength"]
    assert stored == sink.pos and (inline is None) == bool(sink.parts)
    return {"case": f"stream {args.codes} codes x {args.days} days", "codes": stats.codes,
            "rows": _rows(stats.rollup), "zip_mb": sink.pos / 2**20, "parts": len(sink.parts), "seconds": seconds,
            "cpu_s": cpu, "rss_base_mb": base, "rss_peak_mb": _rss_mb()}


def _rows(rollup: Any) -> int:
    """Data rows of the three rollup files."""
    return int(rollup.day_rows + rollup.country_rows + rollup.device_rows)


def _split(total: int, n: int) -> list[int]:
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def seed_dynamodb(args: argparse.Namespace) -> str:
    """Codes and daily aggregates in DynamoDB Local; returns the scope."""
    from qrpro.data import accounts
    from qrpro.data import keys as k
    from qrpro.data.accounts import resolve_caller
    from qrpro.data.aws import ddb
    from qrpro.data.schema import create_tables
    from qrpro.data.table import to_item
    from qrpro.domain.clock import days_back
    from qrpro.services import codes as code_data

    create_tables(ddb(), os.environ["TABLE_NAME"], os.environ["IDEMPOTENCY_TABLE_NAME"])
    user_id = accounts.create_account("bench@example.com", "agency", NOW)
    caller = resolve_caller(user_id, "bench-key")
    days = days_back(int(time.time()), args.ddb_days)
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        request = {os.environ["TABLE_NAME"]: [{"PutRequest": {"Item": i}} for i in batch]}
        while request:
            request = ddb().batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        batch.clear()

    for i in range(args.ddb_codes):
        fields = {name: value for name, value in _code(i).items()
                  if name in ("url", "label", "tag", "style_json", "logo_key", "frame_style", "frame_text")}
        code = code_data.create(caller, fields, NOW)
        for j, day in enumerate(days):
            batch.append(to_item({"pk": k.pk_code_agg(code["id"]), "sk": k.sk_day(day), "ttl": 4_000_000_000,
                                  "total": 6, "c_US": 1 + j % 3, "c_CA": 5 - j % 3, "d_mobile": 4, "d_desktop": 2}))
            if len(batch) == 25:
                flush()
    if batch:
        flush()
    return caller.scope


def case_dynamodb(args: argparse.Namespace) -> dict[str, Any]:
    from qrpro.data.aws import client
    from qrpro.domain.plans import plan
    from qrpro.services.export import export

    client("s3").head_bucket(Bucket=BUCKET)
    base = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    out = export(args.scope, plan("agency"), int(time.time()))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    items = args.ddb_codes * args.ddb_days
    return {"case": f"dynamodb {args.ddb_codes} codes x {args.ddb_days} days", "codes": out.codes,
            "rows": _rows(out.rollup), "zip_mb": out.size / 2**20, "parts": 0 if out.body is not None else -1,
            "seconds": seconds, "cpu_s": cpu, "rss_base_mb": base, "rss_peak_mb": _rss_mb(),
            "items_per_s": items / seconds}


def _moto(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=1_095)
    parser.add_argument("--countries", type=int, default=2)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--ddb-codes", type=int, default=100)
    parser.add_argument("--ddb-days", type=int, default=365)
    parser.add_argument("--skip-dynamodb", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--scope", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        result = case_stream(args) if args.case == "stream" else case_dynamodb(args)
        print(json.dumps(result))
        return

    import tempfile

    from qrpro_cli.engines import free_port, start_dynamodb_local

    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106
               AWS_DEFAULT_REGION="us-east-1", EXPORT_BUCKET=BUCKET, TABLE_NAME="bench",
               IDEMPOTENCY_TABLE_NAME="bench-idem", SHORT_BASE_URL="https://aqr.net",
               POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_METRICS_DISABLED="true")
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            moto_port = free_port()
            procs.append(_moto(moto_port, Path(tmp) / "moto.log"))
            env["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{moto_port}"
            _wait_http(env["AWS_ENDPOINT_URL_S3"])
            cases = [["--case", "stream"]]
            if not args.skip_dynamodb:
                ddb_port = free_port()
                procs.append(start_dynamodb_local(None, ddb_port, Path(tmp) / "ddb.log"))
                env["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{ddb_port}"
                os.environ.update(env)
                _wait_http(env["AWS_ENDPOINT_URL_DYNAMODB"])
                t0 = time.perf_counter()
                scope = seed_dynamodb(args)
                print(f"seeded {args.ddb_codes} codes x {args.ddb_days} days into DynamoDB Local "
                      f"in {time.perf_counter() - t0:.0f} s")
                cases.append(["--case", "dynamodb", "--scope", scope])
            print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average "
                  f"{os.getloadavg()[0]:.1f}")
            print(f"{'case':36} {'codes':>6} {'rollup rows':>11} {'zip MB':>7} {'parts':>5} {'wall s':>7} "
                  f"{'cpu s':>7} {'RSS base':>8} {'RSS peak':>8} {'held MB':>7}")
            for extra in cases:
                flags = ["--codes", str(args.codes), "--days", str(args.days), "--countries", str(args.countries),
                         "--devices", str(args.devices), "--ddb-codes", str(args.ddb_codes),
                         "--ddb-days", str(args.ddb_days), *extra]
                res = subprocess.run([sys.executable, __file__, *flags], check=False, capture_output=True,
                                     text=True, env=env)
                if res.returncode != 0:
                    moto_log = (Path(tmp) / "moto.log").read_text(errors="replace")[-3000:]
                    raise SystemExit(f"case {extra[1]} failed:\n{res.stderr[-3000:]}\nmoto:\n{moto_log}")
                r = json.loads(res.stdout)
                print(f"{r['case']:36} {r['codes']:>6} {r['rows']:>11,} {r['zip_mb']:>7.1f} {r['parts']:>5} "
                      f"{r['seconds']:>7.1f} {r['cpu_s']:>7.1f} {r['rss_base_mb']:>8.1f} {r['rss_peak_mb']:>8.1f} "
                      f"{r['rss_peak_mb'] - r['rss_base_mb']:>7.1f}")
                if "items_per_s" in r:
                    print(f"{'':36} {r['items_per_s']:,.0f} aggregate items read per second")
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


def _wait_http(url: str, timeout: float = 60) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not start")


if __name__ == "__main__":
    main()
