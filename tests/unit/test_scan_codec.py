"""The one codec of a scan (``qrpro.domain.scan_codec``): the queue message, a pane's rows,
the open marks and the fold job each read back what was written, for any scan the redirect
can send; anything else is refused, not misread."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from qrpro.domain import scan_codec as codec
from qrpro.domain.devices import DEVICES
from qrpro.domain.scan_codec import Job, Scan

ROOT = Path(__file__).resolve().parents[2]
TOKEN = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1,
                max_size=64)
HOURS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)).map(
    lambda d: d.strftime("%Y-%m-%d-%H"))
COUNTRIES = st.sampled_from(["US", "DE", "BR", "XX", "JP"])
TARGETS = st.one_of(st.sampled_from(["default", "fallback"]),
                    st.builds(lambda kind, i: f"{kind}:{i}", st.sampled_from(["rule", "split"]),
                              st.integers(0, 99)))
SCANS = st.builds(Scan, id=TOKEN, code_id=TOKEN, scope=st.sampled_from(["USER#", "TEAM#"]).flatmap(
    lambda p: TOKEN.map(lambda t: p + t)), plan=st.sampled_from(["solo", "business", "team", "agency"]),
    hour=HOURS, country=COUNTRIES, device=st.sampled_from(DEVICES), target=TARGETS,
    codes=st.integers(0, codec.MAX_CODES), resent=st.booleans())


@given(SCANS)
def test_a_message_reads_back_as_the_scan_it_was(scan: Scan) -> None:
    assert codec.parse_message(codec.message(scan)) == scan
    assert codec.parse_message(codec.resent(codec.message(scan))) == Scan(**{
        **{f: getattr(scan, f) for f in ("id", "code_id", "scope", "plan", "hour", "country", "device", "target",
                                         "codes")}, "resent": True})


@given(st.lists(SCANS, min_size=1, max_size=30), st.booleans(), st.integers(0, 10**12))
def test_a_pane_reads_back_as_its_scans(scans: list[Scan], hourly: bool, window: int) -> None:
    scope, day, plan = scans[0].scope, scans[0].day, scans[0].plan
    scans = [Scan(id=s.id, code_id=s.code_id, scope=scope, plan=plan, hour=day + s.hour[10:], country=s.country,
                  device=s.device, target=s.target, codes=s.codes) for s in scans]
    attrs = codec.pane_attributes(scans, window, hourly)
    pane = codec.parse_pane(scope, day, 7, attrs)
    assert (pane.seq, pane.window) == (7, window)
    kept = [s if hourly else Scan(**{**{f: getattr(s, f) for f in ("id", "code_id", "scope", "plan", "country",
                                                                     "device", "target", "codes")},
                                     "hour": f"{day}-00"}) for s in scans]
    assert pane.scans == kept  # a plan without hourly analytics keeps no hour
    assert list(codec.pane_ids(attrs)) == [s.id for s in scans]


@given(st.integers(0, 10**codec.SEQ_DIGITS - 1))
def test_pane_keys_sort_as_their_numbers_and_apart_from_the_checkpoint(seq: int) -> None:
    assert codec.pane_seq(codec.pane_sk(seq)) == seq
    assert "!" < codec.pane_sk(0) <= codec.pane_sk(seq) < "0"  # checkpoint first; old hex keys after
    assert codec.pane_seq("!") is None and codec.pane_seq("3fa8c1d2e4b5a6978877665544332211") is None


@given(TOKEN.map(lambda t: "TEAM#" + t), HOURS.map(lambda h: h[:10]), st.integers(0, 10**15), st.integers(0, 2**40))
def test_marks_and_jobs_read_back(scope: str, day: str, fence: int, at: int) -> None:
    assert codec.parse_mark_sk(codec.mark_sk(scope, day)) == (scope, day)
    assert codec.mark_pk(scope).startswith("OPEN#")
    batch = [Job(scope, day, fence, at), Job("USER#u", day, fence, at)]
    assert codec.parse_jobs(codec.jobs(batch)) == batch


def test_a_pane_of_the_design_before_sequence_numbers_still_reads() -> None:
    old = {"p": "team", "c": "code-1 aBc123x 4", "s": "abc 0 US mobile rule:1 09 1\ndef 0 XX tablet default 10 0"}
    pane = codec.parse_pane("TEAM#t", "2026-11-30", 0, old)
    assert [(s.id, s.code_id, s.codes, s.hour, s.target) for s in pane.scans] == [
        ("abc", "code-1", 4, "2026-11-30-09", "rule:1"), ("def", "code-1", 4, "2026-11-30-10", "default")]
    body = json.dumps({"id": "x1", "code_id": "c", "scope": "USER#u", "plan": "solo", "hour": "2026-11-30-09",
                       "country": "US", "device": "mobile", "s": "aBc123x", "m": 1})  # an older message
    assert codec.parse_message(body) == Scan("x1", "c", "USER#u", "solo", "2026-11-30-09", "US", "mobile")


def test_what_is_not_a_scan_of_ours_is_refused() -> None:
    good = {"id": "x1", "code_id": "c", "scope": "USER#u", "plan": "solo", "hour": "2026-11-30-09",
            "country": "us", "device": "phone", "t": "rule:7", "n": 3}
    assert codec.parse_message(json.dumps(good)) == Scan("x1", "c", "USER#u", "solo", "2026-11-30-09", "US",
                                                         "unknown", "rule:7", 3)
    for bad in ({**good, "scope": "EVIL#x"}, {**good, "id": "a b"}, {**good, "hour": "2026-13-01-00"},
                {**good, "plan": "x y"}, {k: v for k, v in good.items() if k != "code_id"}):
        assert codec.parse_message(json.dumps(bad)) is None
    assert codec.parse_message("not json") is None and codec.parse_message("[1]") is None
    assert codec.parse_jobs('{"fence": 1, "days": [["EVIL", "2026-01-01"]]}') is None
    assert codec.parse_jobs('{"fence": 1, "days": [["USER#u", "someday"]]}') is None


def test_the_codec_imports_the_standard_library_only() -> None:
    paths = [str(ROOT / "layers"), str(ROOT)]
    code = (f"import sys; sys.path[:0] = {paths!r}; before = set(sys.modules); import qrpro.domain.scan_codec; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in sys.stdlib_module_names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert [m for m in eval(out.stdout) if not m.startswith("qrpro")] == []  # noqa: S307 - our own output
