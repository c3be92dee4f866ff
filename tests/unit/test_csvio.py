"""The export's file formats: codes.csv / scans.csv writers, formula
neutralisation and the codes.csv reader used by the import."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrpro.domain import csvio
from qrpro.domain.csvio import (
    CODE_COLUMNS,
    IMPORTABLE,
    SCAN_COLUMNS,
    DayCounts,
    codes_csv,
    neutralise,
    parse_codes_csv,
    scans_csv,
    unneutralise,
    write_export,
)
from qrpro.domain.errors import ValidationFailed

CODE: dict[str, Any] = {
    "id": "0b6f7c2e-1111-4e8a-9d7e-1234567890ab", "shortcode": "aBc123x", "short_url": "https://aqr.net/aBc123x",
    "url": "https://example.com/landing?a=1,b=2", "label": "=HYPERLINK(\"http://evil\")", "tag": "q2,print",
    "qr_type": "url", "style_json": '{"dark": "#112233"}', "logo_key": "instagram", "frame_style": "scan-me",
    "frame_text": "SCAN ME", "group_id": None, "status": "grace", "grace_until": 1721064000, "scans_30d": 1245,
    "created_at": 1713288000, "updated_at": 1713370000,
}


def _text(chunks: Any) -> str:
    return "".join(chunks)


def test_code_columns_are_the_contract_fields_in_order() -> None:
    assert CODE_COLUMNS == ("id", "shortcode", "short_url", "url", "label", "tag", "qr_type", "style_json",
                            "logo_key", "frame_style", "frame_text", "group_id", "status", "grace_until",
                            "scans_30d", "created_at", "updated_at")
    assert SCAN_COLUMNS == ("code_id", "shortcode", "day", "country", "device", "scans")


@pytest.mark.parametrize(("raw", "safe"), [
    ("=1+2", "'=1+2"), ("+33 1 23", "'+33 1 23"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("'quoted", "''quoted"), ("plain", "plain"), ("", ""),
    ("a=b", "a=b"), (" =1", " =1"),
])
def test_neutralise(raw: str, safe: str) -> None:
    assert neutralise(raw) == safe
    assert unneutralise(safe) == raw


def test_unneutralise_leaves_a_hand_written_quote() -> None:
    assert unneutralise("'abc") == "'abc"
    assert unneutralise("'") == "'"
    assert unneutralise("''") == "'"


@given(st.text())
def test_neutralise_round_trip(value: str) -> None:
    safe = neutralise(value)
    assert unneutralise(safe) == value
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_codes_csv_row_is_every_field_neutralised() -> None:
    rows = list(csv.reader(io.StringIO(_text(codes_csv([CODE])), newline="")))
    assert rows[0] == list(CODE_COLUMNS)
    assert rows[1] == [
        CODE["id"], "aBc123x", "https://aqr.net/aBc123x", "https://example.com/landing?a=1,b=2",
        "'=HYPERLINK(\"http://evil\")", "q2,print", "url", '{"dark": "#112233"}', "instagram", "scan-me",
        "SCAN ME", "", "grace", "1721064000", "1245", "1713288000", "1713370000"]
    assert len(rows) == 2


def test_scans_csv_rows_and_re_summing() -> None:
    days = [DayCounts("c1", "aBc123x", "2026-04-01", 7, {"US": 5, "XX": 2, "CA": 0}, {"mobile": 6, "desktop": 1}),
            DayCounts("c1", "aBc123x", "2026-04-02", 1, {"FR": 1}, {"tablet": 1})]
    counter = [0]
    rows = list(csv.DictReader(io.StringIO(_text(scans_csv(days, counter)), newline="")))
    assert counter == [len(rows)] == [8]
    assert rows[:5] == [
        {"code_id": "c1", "shortcode": "aBc123x", "day": "2026-04-01", "country": "", "device": "", "scans": "7"},
        {"code_id": "c1", "shortcode": "aBc123x", "day": "2026-04-01", "country": "US", "device": "", "scans": "5"},
        {"code_id": "c1", "shortcode": "aBc123x", "day": "2026-04-01", "country": "XX", "device": "", "scans": "2"},
        {"code_id": "c1", "shortcode": "aBc123x", "day": "2026-04-01", "country": "", "device": "desktop",
         "scans": "1"},
        {"code_id": "c1", "shortcode": "aBc123x", "day": "2026-04-01", "country": "", "device": "mobile",
         "scans": "6"},
    ]
    for kind in ("total", "country", "device"):
        def wanted(r: dict[str, str], kind: str = kind) -> bool:
            return {"total": not r["country"] and not r["device"], "country": bool(r["country"]),
                    "device": bool(r["device"])}[kind]
        assert sum(int(r["scans"]) for r in rows if wanted(r)) == 8


def test_write_export_zip_members() -> None:
    out = io.BytesIO()
    asked: list[list[tuple[str, str]]] = []

    def daily(pairs: list[tuple[str, str]]) -> list[DayCounts]:
        asked.append(list(pairs))
        return [DayCounts(CODE["id"], "aBc123x", "2026-04-01", 3, {"US": 3}, {"mobile": 3})]

    stats = write_export(out, "TEAM#t-1", [CODE], daily, 1775001600)
    assert (stats.codes, stats.scan_rows) == (1, 3)
    assert asked == [[(CODE["id"], "aBc123x")]]
    zf = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    assert zf.testzip() is None
    assert [i.filename for i in zf.infolist()] == ["codes.csv", "scans.csv", "README.txt"]
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    assert zf.read("codes.csv").decode() == _text(codes_csv([CODE]))
    assert zf.read("scans.csv").decode().splitlines()[1] == f"{CODE['id']},aBc123x,2026-04-01,,,3"
    readme = zf.read("README.txt").decode()
    assert "team t-1" in readme and "1 codes in codes.csv, 3 rows in scans.csv" in readme
    assert "2026-04-01 00:00:00" in readme


def test_write_export_to_an_unseekable_stream() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def tell(self) -> int:
            return len(self.data)

        def write(self, b: Any) -> int:
            self.data += b
            return len(b)

    pipe = Pipe()
    many = [dict(CODE, id=f"id-{i}", shortcode=f"s{i:06d}") for i in range(2000)]
    write_export(pipe, "USER#u", many, lambda pairs: [], 1775001600)
    zf = zipfile.ZipFile(io.BytesIO(bytes(pipe.data)))
    assert zf.testzip() is None
    assert len(zf.read("codes.csv").decode().splitlines()) == 2001


# -- the reader -------------------------------------------------------------------------------


def test_parse_exported_codes_csv_keeps_only_importable_fields() -> None:
    grace = dict(CODE, style_json=None, logo_key=None, label="", tag="-neg,@at", frame_text="'q")
    items = parse_codes_csv(_text(codes_csv([CODE, grace])))
    assert items[0] == {"url": CODE["url"], "label": CODE["label"], "tag": "q2,print", "qr_type": "url",
                        "style_json": CODE["style_json"], "logo_key": "instagram", "frame_style": "scan-me",
                        "frame_text": "SCAN ME"}
    # Empty cells: the field is left out (defaults apply), but text fields stay "".
    assert items[1] == {"url": CODE["url"], "label": "", "tag": "-neg,@at", "qr_type": "url",
                        "frame_style": "scan-me", "frame_text": "'q"}


def test_parse_minimal_and_reordered_columns_bom_and_blank_lines() -> None:
    text = "\ufeffLabel , URL,extra\r\n\r\nA,https://a.example/,x\r\n'=B,https://b.example/,y\n\n"
    assert parse_codes_csv(text) == [{"label": "A", "url": "https://a.example/"},
                                     {"label": "=B", "url": "https://b.example/"}]
    assert parse_codes_csv("url\nhttps://a.example/\n") == [{"url": "https://a.example/"}]
    assert parse_codes_csv("url,label\n") == []


@pytest.mark.parametrize(("text", "field", "fragment"), [
    ("", "body", "empty"),
    ("\r\n\r\n", "body", "empty"),
    ("label,tag\nA,B\n", "body", "no url column"),
    ("url,label\nhttps://a.example/,A\nhttps://b.example/\n", "codes[1]", "has 1 cells"),
    ("url,label\nhttps://a.example/,A,extra\n", "codes[0]", "has 3 cells"),
    ("url,URL\nhttps://a.example/,https://b.example/\n", "body", "twice"),
])
def test_parse_structural_errors(text: str, field: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_codes_csv(text)
    assert err.value.extra["field"] == field
    assert fragment in err.value.extra["message"]


def test_parse_oversized_cell_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_codes_csv("url\n" + "x" * (csv.field_size_limit() + 10) + "\n")
    assert err.value.extra["field"] == "codes[0].url"


@pytest.mark.parametrize(("text", "field", "fragment"), [
    # issue 16 (4): what a lenient reader accepted and mangled
    ('url,label\nhttps://a.example/,"unterminated\n', "codes[0].label", "line 2 of the CSV, column label: a quoted "
                                                                          "cell is never closed"),
    ('url,label\nhttps://a.example/,A\n"https://b.example/,B\n', "codes[1].url", "line 3"),
    ('url,label\nhttps://a.example/,"quoted"after\n', "codes[0].label", "text after the closing quote"),
    ('url,label\n"https://a.example/" ,A\n', "codes[0].url", "text after the closing quote"),
    ('url,label,tag\nhttps://a.example/,A,x"y\n', "codes[0].tag", "a quote inside an unquoted cell"),
    ('url,label\nhttps://a.example/,"ok"\nhttps://b.example/,"x""\n', "codes[1].label", "never closed"),
    ('url,"label\n', "body", "the header"),
    ('url,label\nhttps://a.example/,A,"x"y\n', "codes[0]", "column #3"),
])
def test_malformed_csv_is_refused_naming_row_and_column(text: str, field: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_codes_csv(text)
    assert err.value.extra["field"] == field
    assert fragment in err.value.extra["message"]


def test_strict_reading_keeps_every_valid_quoting() -> None:
    text = 'url,label,tag\r\n"https://a.example/?q=1,2","say ""hi""","multi\nline"\r\nhttps://b.example/,,""\r\n'
    assert parse_codes_csv(text) == [{"url": "https://a.example/?q=1,2", "label": 'say "hi"', "tag": "multi\nline"},
                                     {"url": "https://b.example/", "label": "", "tag": ""}]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), min_size=2, max_size=2), max_size=4))
def test_strict_reading_agrees_with_the_csv_module_on_what_csv_writer_writes(rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([["url", "label"], *rows])
    expected = [r for r in csv.reader(io.StringIO(buf.getvalue(), newline=""), strict=True)][1:]
    got = parse_codes_csv(buf.getvalue())
    kept = [r for r in expected if r and not (len(r) == 1 and not r[0].strip())]
    assert [[g.get("url", ""), g["label"]] for g in got] == [[csvio.unneutralise(c) for c in r] for r in kept]


_cells = st.text(max_size=40)
_maybe = st.one_of(st.none(), _cells)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "url": _cells, "label": _cells, "tag": _cells, "qr_type": _cells, "style_json": _maybe, "logo_key": _maybe,
    "frame_style": _cells, "frame_text": _cells, "group_id": _maybe, "status": _cells,
    "grace_until": st.one_of(st.none(), st.integers(0, 2**40)), "scans_30d": st.integers(0, 10**9),
}), max_size=5))
def test_codes_csv_round_trip_is_lossless(codes: list[dict[str, Any]]) -> None:
    full = [dict(c, id=f"id{i}", shortcode=f"sc{i}", short_url=f"https://aqr.net/sc{i}", created_at=1,
                 updated_at=2) for i, c in enumerate(codes)]
    parsed = parse_codes_csv(_text(codes_csv(full)))
    expected = [{f: c[f] for f in IMPORTABLE if c[f] not in (None, "") or f in csvio.TEXT_FIELDS} for c in full]
    assert parsed == expected


_names = st.text(min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_names, _names, _names, st.integers(0, 10**6),
                          st.dictionaries(_names, st.integers(0, 10**6), max_size=4),
                          st.dictionaries(_names, st.integers(0, 10**6), max_size=3)), max_size=6))
def test_scans_csv_is_standard_csv_for_any_text(raw: list[tuple[Any, ...]]) -> None:
    """scans.csv is formatted by hand for speed: any csv reader must read back exactly the counters,
    whatever the strings (quotes, commas, line breaks, formula triggers)."""
    days = [DayCounts(*r) for r in raw]
    counter = [0]
    rows = list(csv.reader(io.StringIO(_text(scans_csv(days, counter)), newline="")))
    assert rows[0] == list(SCAN_COLUMNS)
    expected = []
    for d in days:
        base = [d.code_id, d.shortcode, d.day]
        if d.total:
            expected.append([*base, "", "", str(d.total)])
        expected += [[*base, c, "", str(n)] for c, n in sorted(d.countries.items()) if n]
        expected += [[*base, "", v, str(n)] for v, n in sorted(d.devices.items()) if n]
    assert [[unneutralise(c) for c in row] for row in rows[1:]] == expected
    assert counter == [len(expected)]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows[1:] for c in row)


def test_scans_csv_chunks_a_long_rollup() -> None:
    days = [DayCounts("c", "s", f"2026-01-{i % 28 + 1:02d}", 2, {"US": 2}, {"mobile": 2}) for i in range(1000)]
    counter = [0]
    chunks = list(scans_csv(days, counter))
    assert len(chunks) > 2 and counter == [3000]
    assert len("".join(chunks).splitlines()) == 3001
