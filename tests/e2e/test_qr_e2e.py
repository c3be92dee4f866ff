"""A new user downloads a framed PNG with a logo and their phone reads it."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image

from tests.e2e.conftest import Stack


def test_png_with_logo_and_frame_decodes_to_the_short_url(stack: Stack) -> None:
    key = stack.account("business")["api_key"]
    code = stack.api("POST", "/api/codes", key, json_body={
        "url": "https://example.com/menu?table=4", "logo_key": "menu", "frame_style": "banner-bottom",
        "frame_text": "SCAN FOR THE MENU", "style_json": '{"dark": "#1a237e", "light": "#ffffff"}'}).json()
    r = stack.api("GET", f"/api/codes/{code['id']}/qr?format=png&scale=8", key)
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert r.headers["Cache-Control"] == "private, max-age=300"
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(r.body)))
    assert [b.text for b in found] == [code["short_url"]]
    static = stack.api("GET", f"/api/codes/{code['id']}/qr?format=png&variant=static&scale=8", key)
    assert [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(static.body)))] == [code["url"]]
    again = stack.api("GET", f"/api/codes/{code['id']}/qr?format=png&scale=8", key,
                      headers={"If-None-Match": r.headers["ETag"]})
    assert again.status == 304 and again.body == b""
