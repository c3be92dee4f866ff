"""The reference as a developer meets it (issue 15): the page in a real
headless Chromium, a generated Python client, and two validators of the
served document. Against the local stack, over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BIN, Stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
GENERATOR = BIN / "openapi-python-client"
REDOCLY = ROOT / "node_modules" / ".bin" / "redocly"


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    r = stack.api("GET", "/docs/openapi.json")
    assert r.status == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_root_points_to_the_reference(stack: Stack) -> None:
    r = stack.api("GET", "/")
    assert (r.status, r.headers["Location"]) == (302, "/docs")
    page = stack.api("GET", "/docs")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b"/docs/swagger-ui-bundle.js" in page.body and b"//cdn" not in page.body and b"unpkg" not in page.body


def test_the_reference_page_in_a_real_browser(stack: Stack, tmp_path: Path) -> None:
    """Loads with no failed request, lists the 36 operations, and a "try it" of getUser with a key answers 200."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `make install` installs Debian's package")
    from playwright.sync_api import sync_playwright

    key = stack.account()["api_key"]
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})
            page.on("requestfailed", lambda req: failed.append(f"{req.url} {req.failure}"))
            page.on("response", lambda resp: resp.status >= 400 and failed.append(f"{resp.url} {resp.status}"))
            foreign: list[str] = []
            page.on("request", lambda req: req.url.startswith((stack.api_url, "data:")) or foreign.append(req.url))
            page.goto(stack.api_url + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            operations = page.locator(".opblock").count()
            ids = set(page.locator(".opblock-summary-operation-id").all_inner_texts())

            page.click("button.authorize")
            page.fill(".modal-ux input[type=text], .modal-ux input[type=password]", key)
            page.click(".modal-ux button.authorize")
            page.click(".modal-ux button.btn-done")
            op = page.locator("#operations-User_and_keys-getUser")
            op.locator(".opblock-summary").click()
            op.locator("button.try-out__btn").click()
            op.locator("button.execute").click()
            status = op.locator(".live-responses-table tbody .response-col_status").first
            status.wait_for(timeout=30_000)
            answered = status.inner_text().strip()
            body = op.locator(".live-responses-table tbody .response-col_description .microlight").first.inner_text()
            page.screenshot(path=str(tmp_path / "reference.png"), full_page=False)
        finally:
            browser.close()
    assert failed == [] and foreign == []
    assert operations == 36 and "getUser" in ids and "exportData" in ids
    assert answered == "200"
    assert json.loads(body)["plan"] == "business"
    assert (tmp_path / "reference.png").stat().st_size > 10_000


def test_a_generated_python_client_works_without_hand_edits(stack: Stack, document: dict[str, Any],
                                                            tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    gen = subprocess.run([str(GENERATOR), "generate", "--path", str(spec), "--meta", "none",
                          "--config", str(ROOT / "docs" / "openapi-python-client.yaml"),
                          "--output-path", str(tmp_path / "qrpro_client")],
                         capture_output=True, text=True, timeout=300, check=False, env=env)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    assert "warning" not in (gen.stdout + gen.stderr).lower(), gen.stdout + gen.stderr
    key = stack.account()["api_key"]
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "e2e" / "clients" / "generated_client_script.py")],
                         capture_output=True, text=True, timeout=300, check=False,
                         env={**env, "PYTHONPATH": str(tmp_path), "QRPRO_API": stack.api_url, "QRPRO_KEY": key})
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert seen["plan"] == "business" and len(seen["created"]) == 3
    first, second, last_cursor = seen["pages"]
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second) and last_cursor is None
    assert seen["patched_label"] == "renamed"
    assert seen["analytics"][0] == 0 and seen["analytics"][1] == 30 and seen["analytics"][2] == "30d"
    assert seen["qr"][0] == seen["qr"][1]
    assert "codes.csv" in seen["zip"] and "README.txt" in seen["zip"]
    assert seen["export_link"] == [True, True]
    assert seen["400"] == ["validation_error", "url", True]
    assert seen["404"] == ["not_found", True]


def test_the_served_document_passes_two_validators(document: dict[str, Any], tmp_path: Path) -> None:
    from openapi_spec_validator import validate

    validate(document)  # type: ignore[arg-type]
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    lint = subprocess.run([str(REDOCLY), "lint", str(spec), "--format", "stylish"], capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    output = lint.stdout + lint.stderr
    assert lint.returncode == 0, output
    assert "warning" not in output.lower().replace("deprecation warning", ""), output
