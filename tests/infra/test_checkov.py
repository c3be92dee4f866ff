"""checkov, a second scanner beside cdk-nag, over the synthesized template.

Every failed check is either fixed in infra/ or skipped in the committed
``.checkov.yaml`` with a one-line reason; a new finding fails here, and so does
a skip that no longer matches a finding (the list stays exactly what it must).
The reasons are listed in docs/security.md next to the cdk-nag ones.

checkov lives in a venv of its own (``.venv/checkov``, ``make install``): it
pins boto3 1.35, the functions' lock pins 1.44.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from infra_synth_helpers import ROOT, Synth

CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
CONFIG = ROOT / ".checkov.yaml"
SKIP_LINE = re.compile(r"^\s*-\s*(?P<id>CKV2?_AWS_\d+)\s*#\s*(?P<reason>.+)$")


def skips() -> dict[str, str]:
    """The skipped check ids of .checkov.yaml, each with the reason on its line."""
    listed = yaml.safe_load(CONFIG.read_text())["skip-check"]
    reasons = {m["id"]: m["reason"] for m in map(SKIP_LINE.match, CONFIG.read_text().splitlines()) if m}
    assert sorted(listed) == sorted(reasons), "every skip-check entry is one `- CKV_... # reason` line"
    return reasons


def failed_checks(template: dict[str, Any], tmp_path: Path) -> tuple[set[tuple[str, str]], dict[str, Any]]:
    """checkov's failed (check id, resource) pairs on ``template``, every check run (the config without its skips)."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make install`"
    path = tmp_path / "QrPro.template.json"
    path.write_text(json.dumps(template))
    config = {k: v for k, v in yaml.safe_load(CONFIG.read_text()).items() if k != "skip-check"}
    unskipped = tmp_path / "checkov.yaml"
    unskipped.write_text(yaml.safe_dump(config))
    done = subprocess.run([str(CHECKOV), "-f", str(path), "--config-file", str(unskipped), "-o", "json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: some check failed
    report = json.loads(done.stdout)
    failed = {(c["check_id"], c["resource"]) for c in report["results"].get("failed_checks", [])}
    return failed, report["summary"]


def test_checkov_has_no_unexplained_finding_and_no_stale_skip(synthesized: Synth, tmp_path: Path) -> None:
    reasons = skips()
    failed, summary = failed_checks(synthesized.template, tmp_path)
    assert summary["parsing_errors"] == 0 and summary["passed"] > 200, summary
    unexplained = sorted(f for f in failed if f[0] not in reasons)
    assert not unexplained, f"fix these in infra/ or skip them in .checkov.yaml with a reason: {unexplained}"
    stale = sorted(set(reasons) - {check for check, _ in failed})
    assert not stale, f"these skips match no finding any more: remove them from .checkov.yaml: {stale}"


def test_each_skip_has_a_reason_listed_in_docs_security() -> None:
    security = (ROOT / "docs" / "security.md").read_text()
    for check, reason in skips().items():
        assert len(reason.split()) >= 6, (check, reason)
        assert f"`{check}`" in security, f"docs/security.md does not list the checkov skip {check}"


def test_each_cdk_nag_acknowledgment_is_listed_in_docs_security(synthesized: Synth) -> None:
    security = (ROOT / "docs" / "security.md").read_text()
    rules = {re.sub(r"\[.*$", "", rule) for _, rule, _ in synthesized.stack.acknowledgments}
    missing = sorted(rule for rule in rules if f"`{rule}`" not in security)
    assert not missing, f"docs/security.md does not list the cdk-nag acknowledgments {missing}"
