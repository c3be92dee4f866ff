"""``codes.csv`` (docs/api.md section 11): its cells, its writer and the
reader that ``POST /api/codes/import`` uses for ``text/csv`` bodies. The rest
of the export ZIP is ``qrpro.domain.export_zip``.

Pure: no AWS. Rows are produced one at a time and handed on in small chunks.

Formula injection: a cell that starts with ``=``, ``+``, ``-``, ``@``, TAB or
CR is prefixed with a single quote ``'`` so a spreadsheet shows it as text;
a cell that already starts with ``'`` is prefixed too, so the reader can undo
it unambiguously (``unneutralise(neutralise(x)) == x`` for every string).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from qrpro.domain.errors import ValidationFailed

# Every field of the code object, in the API's order (section 6).
CODE_COLUMNS: tuple[str, ...] = (
    "id", "shortcode", "short_url", "url", "label", "tag", "qr_type", "style_json", "logo_key", "frame_style",
    "frame_text", "group_id", "status", "grace_until", "scans_30d", "created_at", "updated_at", "routing")
# What an import takes from a codes.csv row; everything else is ignored.
IMPORTABLE: tuple[str, ...] = ("url", "label", "tag", "qr_type", "style_json", "logo_key", "frame_style",
                               "frame_text", "routing")
TEXT_FIELDS = frozenset({"label", "tag", "frame_text"})  # an empty cell is "" (not "use the default")

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
CHUNK = 64 * 1024  # characters buffered before a write to the ZIP member


def neutralise(cell: str) -> str:
    """A cell a spreadsheet will not evaluate: prefix ``'`` to formula triggers (and to a leading ``'``)."""
    if cell.startswith((*TRIGGERS, ESCAPE)):
        return ESCAPE + cell
    return cell


def unneutralise(cell: str) -> str:
    """Undo ``neutralise``. A ``'`` is only removed where ``neutralise`` would have put it (before a
    trigger or another ``'``), so a hand-written ``'abc`` stays as it is."""
    if len(cell) >= 2 and cell[0] == ESCAPE and cell[1] in (*TRIGGERS, ESCAPE):
        return cell[1:]
    return cell


def cell(value: Any) -> str:
    """One value as a CSV cell: null is empty, numbers as digits, an object (``routing``) as its compact
    JSON text, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return neutralise(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


# -- writers -----------------------------------------------------------------------------------------


class _Lines:
    """csv rows into text chunks of about ``CHUNK`` characters (one csv.writer, one buffer)."""

    def __init__(self) -> None:
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, lineterminator="\r\n")

    def add(self, row: Iterable[str]) -> str | None:
        self.writer.writerow(row)
        return self.take() if self.buf.tell() >= CHUNK else None

    def take(self) -> str:
        out = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        return out


def code_row(code: Mapping[str, Any]) -> list[str]:
    return [cell(code.get(name)) for name in CODE_COLUMNS]


def codes_csv(codes: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """codes.csv as text chunks: the header, then one row per code object."""
    lines = _Lines()
    lines.add(CODE_COLUMNS)
    for code in codes:
        chunk = lines.add(code_row(code))
        if chunk:
            yield chunk
    yield lines.take()





# -- reader ------------------------------------------------------------------------------------------


_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"')
_PLAIN = re.compile(r'[^",\r\n]*')
MAX_CELL = 128 * 1024


class _Malformed(Exception):
    def __init__(self, pos: int, column: int, problem: str) -> None:
        super().__init__(problem)
        self.pos, self.column, self.problem = pos, column, problem


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(start offset, cells)`` of each record of RFC 4180 CSV, read strictly: a quoted cell must be
    closed and followed by a comma or a line end; a quote inside an unquoted cell is refused
    (``_Malformed``). Lines end with CRLF, LF or CR; an empty line is ``[]``."""
    pos, end = 0, len(text)
    while pos < end:
        start, cells = pos, list[str]()
        while True:
            quoted, start_of_cell = text.startswith('"', pos), pos
            match = (_QUOTED if quoted else _PLAIN).match(text, pos)
            if match is None:
                raise _Malformed(pos, len(cells), "a quoted cell is never closed")
            value = match.group(1).replace('""', '"') if quoted else match.group()
            if len(value) > MAX_CELL:
                raise _Malformed(pos, len(cells), f"a cell is over {MAX_CELL} characters")
            cells.append(value)
            pos = match.end()
            following = text[pos:pos + 1]
            if following == ",":
                pos += 1
                continue
            if following in ("", "\r", "\n"):
                pos += 2 if text.startswith("\r\n", pos) else len(following)
                break
            if quoted and following == '"':  # the regex gave back an escaped quote: no closing one follows
                raise _Malformed(start_of_cell, len(cells) - 1, "a quoted cell is never closed")
            raise _Malformed(pos, len(cells) - 1, "text after the closing quote of a quoted cell" if quoted else
                             'a quote inside an unquoted cell (quote the whole cell and double each ")')
        yield start, [] if cells == [""] else cells


def parse_codes_csv(text: str) -> list[dict[str, Any]]:
    """The import payloads of a codes.csv: per row only the importable fields, un-neutralised.

    Needs a header row with at least a ``url`` column; other known columns of the export and unknown
    columns are ignored. An empty cell leaves the field out (its default applies), except label, tag
    and frame_text, which are "". Blank lines are skipped. The CSV is read strictly (RFC 4180): an
    unclosed quote, text after a closing quote or a quote inside an unquoted cell is
    ``ValidationFailed`` naming the row and column (``codes[i].label``); other structural problems
    name ``body`` or the row (``codes[i]``).
    """
    text = text.removeprefix("\ufeff")
    names: list[str] = []
    out: list[dict[str, Any]] = []
    wanted: dict[str, int] = {}
    records = _records(text)
    try:
        for start, row in records:
            line = text.count("\n", 0, start) + 1
            if not names:
                if not row:
                    continue
                names = [h.strip().lower() for h in row]
                if "url" not in names:
                    raise ValidationFailed("body", "the CSV header has no url column")
                for index, name in enumerate(names):
                    if name in IMPORTABLE:
                        if name in wanted:
                            raise ValidationFailed("body", f"the CSV header has the column {name} twice")
                        wanted[name] = index
                continue
            if not row or (len(row) == 1 and not row[0].strip() and len(names) > 1):
                continue  # a blank line
            i = len(out)
            if len(row) != len(names):
                raise ValidationFailed(f"codes[{i}]", f"line {line} of the CSV has {len(row)} cells; "
                                                      f"the header has {len(names)}")
            item: dict[str, Any] = {}
            for name, index in wanted.items():
                value = unneutralise(row[index])
                if value != "" or name in TEXT_FIELDS:
                    item[name] = value
            out.append(item)
    except _Malformed as err:
        line = text.count("\n", 0, err.pos) + 1
        if not names:
            raise ValidationFailed("body", f"line {line} of the CSV (the header): {err.problem}") from None
        column = names[err.column] if err.column < len(names) else f"#{err.column + 1}"
        field = f"codes[{len(out)}]" + (f".{column}" if err.column < len(names) else "")
        raise ValidationFailed(field, f"line {line} of the CSV, column {column}: {err.problem}") from None
    if not names:
        raise ValidationFailed("body", "the CSV is empty: a header row with at least a url column is needed")
    return out
