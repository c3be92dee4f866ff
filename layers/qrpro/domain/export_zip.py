"""The export ZIP (docs/api.md section 11): ``codes.csv`` (``qrpro.domain.csvio``),
the daily rollup ``scans.csv`` and its breakdowns ``scans_by_country.csv``,
``scans_by_device.csv``, ``scans_by_os.csv`` and ``scans_by_target.csv``, and ``README.txt``.

Pure: no AWS. Everything streams: rows are produced one at a time and written
in small chunks, so an export never holds its whole content in memory (the
breakdown files wait, deflated, in a temporary file while scans.csv is written).
The README text makes this module longer than most.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, NamedTuple, Protocol

# the analytics API's folding, shared
from qrpro.domain.analytics import (
    fold_countries,
    fold_devices,
    fold_oses,
    fold_targets,
    with_default_target,
    with_other_os,
)
from qrpro.domain.clock import utc
from qrpro.domain.csvio import CHUNK, codes_csv, neutralise

# The daily rollup and its breakdowns (section 11).
SCAN_COLUMNS: tuple[str, ...] = ("code_id", "shortcode", "label", "day", "scans")
COUNTRY_COLUMNS: tuple[str, ...] = ("code_id", "shortcode", "day", "country", "scans")
DEVICE_COLUMNS: tuple[str, ...] = ("code_id", "shortcode", "day", "device", "scans")
TARGET_COLUMNS: tuple[str, ...] = ("code_id", "shortcode", "day", "target", "scans")
OS_COLUMNS: tuple[str, ...] = ("code_id", "shortcode", "day", "os", "scans")
LEVEL = 1  # deflate level: CSV still shrinks ~8x, about 3x faster than the default 6
SPOOL_MEMORY = 1024 * 1024  # deflated bytes a breakdown file keeps in memory before it moves to a temporary file


class CodeRef(NamedTuple):
    """What the rollup files repeat of a code (collected while codes.csv is written)."""

    id: str
    shortcode: str
    label: str


class DayCounts(NamedTuple):
    """One code's counters for one UTC day, as the daily aggregate stores them."""

    code_id: str
    shortcode: str
    label: str
    day: str
    total: int
    countries: Mapping[str, int]
    devices: Mapping[str, int]
    targets: Mapping[str, int] = {}  # never mutated; a day counted before routing has none
    oses: Mapping[str, int] = {}  # never mutated; a day counted before OS classes has none


@dataclass
class RollupStats:
    """Data rows written to each rollup file, and the total number of scans (the sum of the ``scans``
    column of each file)."""

    scans: int = 0
    day_rows: int = 0
    country_rows: int = 0
    device_rows: int = 0
    target_rows: int = 0
    os_rows: int = 0


def _quoted(value: str) -> str:
    """One neutralised CSV cell, quoted the way csv.writer would (only where needed)."""
    value = neutralise(value)
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


FLUSH_ROWS = 1024  # rows gathered per file before they are handed on


def _ignore(text: str) -> None:
    pass


def write_rollup(days: Iterable[DayCounts], day_out: Callable[[str], object], country_out: Callable[[str], object],
                 device_out: Callable[[str], object], target_out: Callable[[str], object] = _ignore,
                 os_out: Callable[[str], object] = _ignore) -> RollupStats:
    """scans.csv, scans_by_country.csv, scans_by_device.csv, scans_by_target.csv and scans_by_os.csv
    from one pass over ``days``, as text chunks handed to the ``*_out`` callables (headers first).

    Countries, devices, routing targets and OS families are folded per code-day by the analytics
    functions (``fold_countries``: the noise floor, unknown countries into ``Other``;
    ``fold_devices``; ``fold_targets`` and ``fold_oses``: the floor again, into ``other``), so
    every file's ``scans`` sums to the same total and nothing under the floor is ever listed.

    The hot loop of a big export (tens of millions of rows), so rows are formatted directly (the
    same bytes csv.writer writes): each repeated string (day, country, device) is neutralised and
    quoted once, and a code's prefixes are built once for its rows."""
    memo: dict[str, str] = {}

    def cell(value: str) -> str:
        out = memo.get(value)
        if out is None:
            out = memo[value] = _quoted(value)
        return out

    stats = RollupStats()
    day_rows = [",".join(SCAN_COLUMNS) + "\r\n"]
    country_rows = [",".join(COUNTRY_COLUMNS) + "\r\n"]
    device_rows = [",".join(DEVICE_COLUMNS) + "\r\n"]
    target_rows = [",".join(TARGET_COLUMNS) + "\r\n"]
    os_rows = [",".join(OS_COLUMNS) + "\r\n"]
    heads = 1  # header lines still in the buffers

    def flush() -> None:
        nonlocal heads
        stats.day_rows += len(day_rows) - heads
        stats.country_rows += len(country_rows) - heads
        stats.device_rows += len(device_rows) - heads
        stats.target_rows += len(target_rows) - heads
        stats.os_rows += len(os_rows) - heads
        heads = 0
        for rows, out in ((day_rows, day_out), (country_rows, country_out), (device_rows, device_out),
                          (target_rows, target_out), (os_rows, os_out)):
            out("".join(rows))
            rows.clear()

    code: tuple[str, str, str] | None = None
    ids = labelled = ""
    for d in days:
        if d[:3] != code:  # a code's days come together: its cells are quoted once
            code = d[:3]
            ids = f"{_quoted(d.code_id)},{_quoted(d.shortcode)},"
            labelled = f"{ids}{_quoted(d.label)},"
        day = cell(d.day)
        if d.total:
            day_rows.append(f"{labelled}{day},{d.total}\r\n")
            stats.scans += d.total
        prefix = f"{ids}{day},"
        for country, n in fold_countries(d.countries):
            country_rows.append(f"{prefix}{cell(country)},{n}\r\n")
        for device, n in fold_devices(d.devices):
            device_rows.append(f"{prefix}{cell(device)},{n}\r\n")
        for target, n in fold_targets(with_default_target(d.total, d.targets)):
            target_rows.append(f"{prefix}{cell(target)},{n}\r\n")
        for family, n in fold_oses(with_other_os(d.total, d.oses)):
            os_rows.append(f"{prefix}{cell(family)},{n}\r\n")
        if len(day_rows) + len(country_rows) + len(device_rows) + len(target_rows) + len(os_rows) >= FLUSH_ROWS:
            flush()
    flush()
    return stats


class Spool:
    """Text kept deflated in a temporary file (in memory up to ``SPOOL_MEMORY`` bytes, then on disk)
    until it can be copied into its ZIP member: a ZIP written to an unseekable stream holds one open
    member at a time, and the breakdown files are made in the same pass as scans.csv."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - closed by close()
        self.deflate = zlib.compressobj(LEVEL)

    def write(self, text: str) -> None:
        self.file.write(self.deflate.compress(text.encode("utf-8")))

    def read(self) -> Iterator[bytes]:
        """The text written, as UTF-8 chunks (once)."""
        self.file.write(self.deflate.flush())
        self.file.seek(0)
        inflate = zlib.decompressobj()
        while block := self.file.read(CHUNK):
            yield inflate.decompress(block)
        yield inflate.flush()

    def close(self) -> None:
        self.file.close()


README = """QR Pro data export
==================

Generated {generated} (UTC) for {scope}.

What is in this ZIP
-------------------
  codes.csv              your codes, one row per code ({codes} rows)
  scans.csv              scans per code and day ({day_rows} rows)
  scans_by_country.csv   the same scans split by country ({country_rows} rows)
  scans_by_device.csv    the same scans split by device type ({device_rows} rows)
  scans_by_os.csv        the same scans split by operating system ({os_rows} rows)
  scans_by_target.csv    the same scans split by where they were sent ({target_rows} rows)
  README.txt             this file

{scans} scans in all. Adding up the "scans" column of scans.csv, of
scans_by_country.csv, of scans_by_device.csv, of scans_by_os.csv or of
scans_by_target.csv gives that same number: a spreadsheet SUM of the column is
right in every file. Bots and link previews are not scans: they are in none.

The files are CSV (comma separated, double quotes around a value that needs
them, CRLF line ends), UTF-8, each with a header row. Times are UTC.

Spreadsheet safety: a text cell that starts with = + - @ TAB or CR, or with a
single quote ', has one extra single quote ' in front of it, so spreadsheet
programs show it as text instead of running it as a formula. Remove that one
leading quote to get the original value. POST /api/codes/import does this
for you: codes.csv re-imports as it is (Content-Type: text/csv).

codes.csv
---------
One row per code of the account (or team), every status: active, paused,
grace (deleted, still redirecting until grace_until) and expired. The columns
are the fields of the code object of the API, in this order:

  id           code id (UUID)
  shortcode    the 7-character shortcode
  short_url    the printed URL that redirects
  url          destination
  label        free text (may be empty)
  tag          comma-separated tags (may be empty)
  qr_type      e.g. url
  style_json   JSON object as text, or empty (no style)
  logo_key     preset logo name, or empty (none)
  frame_style  none, scan-me, banner-top or banner-bottom
  frame_text   frame caption (may be empty)
  group_id     group id, or empty (no group)
  status       active, paused, grace or expired
  grace_until  unix seconds (UTC) when a grace code expires, or empty
  scans_30d    scans over the last 30 UTC days including the export day
  created_at   unix seconds (UTC)
  updated_at   unix seconds (UTC)
  routing      where each scan goes (schedule, rules, split, UTM tags) as
               one JSON object, or empty (every scan goes to url)

Re-importing codes.csv creates new codes (new ids and shortcodes) with the
url, label, tag, qr_type, style_json, logo_key, frame_style, frame_text and
routing of each row; the other columns are ignored.

scans.csv
---------
How many times each code was scanned on each day, over your plan's analytics
history (ending today). One row per code and day that had scans; days without
scans have no row. Columns:

  code_id     the code's id (as in codes.csv)
  shortcode   the code's shortcode
  label       the code's label, to read the file without codes.csv
  day         the UTC day, YYYY-MM-DD
  scans       scans of that code on that day

scans_by_country.csv
--------------------
The scans of scans.csv split by the country they came from. Columns:
code_id, shortcode, day, country, scans. The country is a two-letter ISO
3166-1 code (US, DE, ...). To protect the people who scan, a country with
fewer than 5 scans of a code on a day is not named: those scans, and scans
whose country is unknown, are counted together in one row with the country
"Other" for that code and day. This is the same rule as the analytics API,
applied to each code and day. The rows of a code and day add up to that
day's row in scans.csv.

scans_by_device.csv
-------------------
The scans of scans.csv split by the type of device that scanned. Columns:
code_id, shortcode, day, device, scans. The device is mobile, tablet, desktop
or unknown. The rows of a code and day add up to that day's row in
scans.csv.

scans_by_os.csv
---------------
The scans of scans.csv split by the operating system of the device that
scanned. Columns: code_id, shortcode, day, os, scans. The os is ios,
android, windows, macos, linux or other: like countries, a system with fewer
than 5 scans of a code on a day is not named, and those scans (and scans
counted before QR Pro recorded systems) are counted together as "other".
The rows of a code and day add up to that day's row in scans.csv.

scans_by_target.csv
-------------------
The scans of scans.csv split by where the code's routing sent them. Columns:
code_id, shortcode, day, target, scans. The target is default (the code's
url), rule:N (the code's rule number N, counted from 0), split:N (entry N of
its split), fallback (its fallback_url, once the campaign ended) or other:
like countries, a target with fewer than 5 scans of a code on a day is not
named, and those scans are counted together as "other". The rows of a code
and day add up to that day's row in scans.csv.

Countries, devices, systems and targets are counted separately, never
together, so there is no file with two of them. QR Pro keeps no IP address, user agent or time of day of a
scan, so none is exported.
"""


def readme(generated_at: int, scope: str, codes: int, rollup: RollupStats) -> str:
    kind, _, ident = scope.partition("#")
    who = f"team {ident}" if kind == "TEAM" else f"user {ident}"
    return README.format(generated=utc(generated_at).strftime("%Y-%m-%d %H:%M:%S"), scope=who, codes=codes,
                         day_rows=rollup.day_rows, country_rows=rollup.country_rows,
                         device_rows=rollup.device_rows, target_rows=rollup.target_rows, os_rows=rollup.os_rows,
                         scans=rollup.scans)


class Writable(Protocol):
    """Where a ZIP can be written: a file, a BytesIO, or an unseekable stream (S3 parts)."""

    def write(self, b: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class ZipStats:
    codes: int
    rollup: RollupStats


@contextlib.contextmanager
def _member(zf: zipfile.ZipFile, name: str, when: int) -> Iterator[IO[bytes]]:
    info = zipfile.ZipInfo(name, date_time=utc(when).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    if sys.version_info >= (3, 13):  # noqa: UP036 - the tests run on 3.11
        info.compress_level = LEVEL
    else:
        setattr(info, "_compresslevel", LEVEL)  # noqa: B010 - its name before Python 3.13
    # force_zip64: sizes are unknown up front and the rollup may pass 4 GiB uncompressed.
    with zf.open(info, "w", force_zip64=True) as member:
        yield member


def write_export(out: Writable, scope: str, codes: Iterable[Mapping[str, Any]],
                 daily: Callable[[list[CodeRef]], Iterable[DayCounts]], generated_at: int) -> ZipStats:
    """The export ZIP into ``out`` (which may be unseekable): codes.csv while collecting the codes'
    (id, shortcode, label), then the four rollup files of exactly those codes from one pass over
    ``daily(refs)`` (scans.csv straight into the ZIP, the breakdowns through a ``Spool`` each), then
    README.txt."""
    refs: list[CodeRef] = []

    def collect() -> Iterator[Mapping[str, Any]]:
        for code in codes:
            refs.append(CodeRef(str(code["id"]), str(code["shortcode"]), str(code.get("label") or "")))
            yield code

    countries, devices, oses, targets = Spool(), Spool(), Spool(), Spool()
    try:
        with zipfile.ZipFile(out, "w") as zf:
            with _member(zf, "codes.csv", generated_at) as member:
                for chunk in codes_csv(collect()):
                    member.write(chunk.encode("utf-8"))
            with _member(zf, "scans.csv", generated_at) as member:
                rollup = write_rollup(daily(refs), lambda text: member.write(text.encode("utf-8")),
                                      countries.write, devices.write, targets.write, oses.write)
            for name, spool in (("scans_by_country.csv", countries), ("scans_by_device.csv", devices),
                                ("scans_by_os.csv", oses), ("scans_by_target.csv", targets)):
                with _member(zf, name, generated_at) as member:
                    for data in spool.read():
                        member.write(data)
            with _member(zf, "README.txt", generated_at) as member:
                member.write(readme(generated_at, scope, len(refs), rollup).encode("utf-8"))
    finally:
        for spool in (countries, devices, oses, targets):
            spool.close()
    return ZipStats(len(refs), rollup)
