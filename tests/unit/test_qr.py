"""QR images (docs/api.md 6.9): every output decodes to exactly the encoded URL.

PNG is decoded directly with zxing-cpp; SVG is rasterised with cairosvg first;
PDF is checked structurally and rasterised with a tiny interpreter of the
operators our writer emits (no PDF renderer is available here).
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, get_args

import cairosvg
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from qrpro import images
from qrpro.domain.codes import FrameStyle, LogoKey
from qrpro.domain.style import contrast_ratio, luminance
from qrpro.images import logos
from qrpro.images.layout import _runs
from qrpro.images.shapes import Ellipse, Polygon, Rect, place

SHORT_URL = "https://aqr.net/aBc123x"
DEST_URL = "https://example.com/landing/spring-2024?utm_source=print&utm_campaign=q2"
FRAMES = images.FRAME_STYLES
LOGOS: tuple[str | None, ...] = (None, *logos.KEYS)


# --- decoding helpers ----------------------------------------------------------

def _pad(im: Image.Image, pad: int) -> Image.Image:
    """Paper of the code's light colour around the image (the code may have
    border 0): the lightest grey in the image."""
    im = im.convert("L")
    out = Image.new("L", (im.width + 2 * pad, im.height + 2 * pad), im.getextrema()[1])
    out.paste(im, (pad, pad))
    return out


def decode_image(im: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(_pad(im, 16))]


def decode_png(data: bytes) -> list[str]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return decode_image(Image.open(io.BytesIO(data)))


def decode_svg(data: bytes) -> list[str]:
    assert data.lstrip().startswith(b"<?xml") and b"<svg" in data
    return decode_png(cairosvg.svg2png(bytestring=data))


def check_pdf(data: bytes) -> bytes:
    """Structural validity: header, xref offsets, stream lengths, trailer; no dates.
    Returns the inflated page content stream."""
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    assert b"CreationDate" not in data and b"ModDate" not in data
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data).group(1))  # type: ignore[union-attr]
    assert data[startxref:startxref + 5] == b"xref\n"
    count = int(re.match(rb"xref\n0 (\d+)\n", data[startxref:]).group(1))  # type: ignore[union-attr]
    entries = re.findall(rb"(\d{10}) (\d{5}) ([nf]) \n", data[startxref:])
    assert len(entries) == count
    for i, (offset, _, kind) in enumerate(entries[1:], start=1):
        assert kind == b"n" and data[int(offset):].startswith(f"{i} 0 obj\n".encode())
    m = re.search(rb"<< /Length (\d+) /Filter /FlateDecode >>\nstream\n", data)
    assert m is not None
    stream = data[m.end():m.end() + int(m.group(1))]
    assert data[m.end() + int(m.group(1)):].startswith(b"\nendstream")
    assert b"/Root 1 0 R" in data and b"/BaseFont /Helvetica-Bold" in data
    return zlib.decompress(stream)


def raster_pdf(data: bytes, px_per_pt: float = 1.0) -> Image.Image:
    """Rasterise our own PDF (operators cm, rg, re, m, l, c, h, f; text skipped)."""
    content = check_pdf(data).decode("latin-1")
    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)
    assert box is not None
    w, h = float(box.group(1)), float(box.group(2))
    im = Image.new("RGB", (round(w * px_per_pt), round(h * px_per_pt)), "white")
    draw = ImageDraw.Draw(im)
    ctm = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    fill: tuple[int, ...] = (0, 0, 0)
    paths: list[list[tuple[float, float]]] = []
    stack: list[float] = []
    content = re.sub(r"BT .*? ET", " ", content)

    def dev(x: float, y: float) -> tuple[float, float]:
        a, b, c, d, e, f = ctm
        return ((a * x + c * y + e) * px_per_pt, (h - (b * x + d * y + f)) * px_per_pt)

    for tok in content.split():
        if re.fullmatch(r"-?[\d.]+", tok):
            stack.append(float(tok))
            continue
        if tok == "cm":
            ctm = tuple(stack[-6:])  # type: ignore[assignment]
        elif tok == "rg":
            fill = tuple(round(v * 255) for v in stack[-3:])
        elif tok == "re":
            x, y, rw, rh = stack[-4:]
            paths.append([dev(x, y), dev(x + rw, y), dev(x + rw, y + rh), dev(x, y + rh)])
        elif tok == "m":
            paths.append([dev(*stack[-2:])])
        elif tok in ("l", "c"):
            paths[-1].append(dev(*stack[-2:]))  # curves as chords: fine for module-aligned symbols
        elif tok == "f":
            for p in paths:
                if len(p) > 2:
                    draw.polygon(p, fill=fill)
            paths = []
        else:
            assert tok == "h", tok
        stack = []
    return im


def decode(fmt: str, data: bytes) -> list[str]:
    if fmt == "png":
        return decode_png(data)
    if fmt == "svg":
        return decode_svg(data)
    return decode_image(raster_pdf(data))


# --- every format x variant x frame x logo decodes ------------------------------

@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("logo", LOGOS)
def test_every_combination_decodes_exactly(frame: str, logo: str | None) -> None:
    for variant_url in (SHORT_URL, DEST_URL):  # dynamic, static
        for fmt in ("svg", "png", "pdf"):
            image = images.render(variant_url, fmt=fmt, scale=4, border=4, frame_style=frame,
                                  frame_text="Scan for the menu", logo_key=logo)
            assert decode(fmt, image) == [variant_url], (fmt, frame, logo, variant_url)


def test_logo_forces_level_h_and_stays_small() -> None:
    scene = images.layout(SHORT_URL, dark="#000000", light="#ffffff", error="l", border=4, frame_style="none",
                          frame_text=None, logo_key="wifi")
    assert scene.error == "h" and scene.logo
    for version in range(1, 41):
        n = 17 + 4 * version
        p = images.logo_patch(n)
        assert p % 2 == 1 and p * p / (n * n) <= 0.09


def test_long_url_drops_the_logo_but_still_decodes() -> None:
    url = "https://example.com/" + "a" * (2048 - 20)
    scene = images.layout(url, dark="#000000", light="#ffffff", error="h", border=4, frame_style="none",
                          frame_text=None, logo_key="link")
    assert not scene.logo and scene.error == "m" and scene.version >= 37
    image = images.render(url, fmt="png", scale=2, error="h", logo_key="link", frame_style="banner-top")
    assert decode_png(image) == [url]


def test_data_that_fits_nowhere() -> None:
    with pytest.raises(images.DataTooLong):
        images.render("https://example.com/" + "\u00e9" * 3000, fmt="svg")


def test_unknown_options_are_rejected() -> None:
    with pytest.raises(ValueError):
        images.render(SHORT_URL, fmt="gif")
    with pytest.raises(ValueError):
        images.render(SHORT_URL, frame_style="circle")
    with pytest.raises(ValueError):
        images.render(SHORT_URL, logo_key="tiktok")



def test_frame_styles_and_logo_keys_come_from_the_code_model() -> None:
    """One list each: the image package derives them from domain/codes.py, and
    every logo key has a drawing (a key added there without one fails here)."""
    assert get_args(FrameStyle.__value__) == images.FRAME_STYLES
    assert get_args(LogoKey.__value__) == logos.KEYS
    assert set(logos.PRESETS) == set(logos.KEYS)


def test_a_logo_is_placed_inverted_on_its_badge() -> None:
    """One shape vocabulary: a preset (unit box, ink = glyph) placed on the dark
    badge scales and offsets every shape and swaps ink for the light colour."""
    placed = place((Rect(0.1, 0.2, 0.5, 0.25, 0.05), Ellipse(0.5, 0.5, 0.2, 0.1, ink=False),
                    Polygon(((0, 0), (1, 0), (0.5, 1 / 3)))), 10, 20, 3, invert=True)
    assert placed == [Rect(10.3, 20.6, 1.5, 0.75, 0.15, ink=False), Ellipse(11.5, 21.5, 0.6, 0.3, ink=True),
                      Polygon(((10, 20), (13, 20), (11.5, 21.0)), ink=False)]
    assert place((Rect(0, 0, 1, 1),), 0, 0, 2) == [Rect(0, 0, 2, 2, ink=True)]


def test_module_runs_skip_empty_rows_and_light_starts() -> None:
    """segno's run finder reports an empty run when the first row starts light; the scene has none."""
    assert _runs([bytearray([0, 1, 1]), bytearray([0, 0, 0]), bytearray([1, 0, 1])]) == (
        (0, 1, 2), (2, 0, 1), (2, 2, 1))

def test_caption_appears_in_svg_and_pdf() -> None:
    svg = images.render(SHORT_URL, fmt="svg", frame_style="scan-me", frame_text="Menu & <drinks>")
    assert b"Menu &amp; &lt;drinks&gt;</text>" in svg
    pdf = images.render(SHORT_URL, fmt="pdf", frame_style="banner-top", frame_text="Caf\u00e9 (menu)")
    assert b"(Caf\\351 \\(menu\\)) Tj" in check_pdf(pdf)
    assert b">SCAN ME</text>" in images.render(SHORT_URL, fmt="svg", frame_style="banner-bottom", frame_text="")
    assert b"<text" not in images.render(SHORT_URL, fmt="svg", frame_text="ignored without a frame")


def test_frame_keeps_a_quiet_zone_even_with_border_0() -> None:
    for frame in FRAMES[1:]:
        image = images.render(DEST_URL, fmt="png", scale=3, border=0, frame_style=frame, frame_text="x" * 40)
        assert decode_png(image) == [DEST_URL]


def test_png_is_two_colour_with_the_style_colours() -> None:
    image = images.render(SHORT_URL, fmt="png", scale=3, dark="#1a237e", light="#fff8e1", logo_key="pdf",
                          frame_style="scan-me")
    im = Image.open(io.BytesIO(image))
    assert im.mode == "P"
    assert sorted(c for _, c in im.convert("RGB").getcolors() or []) == [(0x1A, 0x23, 0x7E), (0xFF, 0xF8, 0xE1)]
    assert decode_png(image) == [SHORT_URL]


def test_png_size_follows_scale_and_border() -> None:
    im = Image.open(io.BytesIO(images.render(SHORT_URL, fmt="png", scale=7, border=3)))
    n = images.layout(SHORT_URL, dark="#000000", light="#ffffff", error="m", border=0, frame_style="none",
                      frame_text=None, logo_key=None).width
    assert im.size == ((n + 6) * 7, (n + 6) * 7)


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_deterministic(fmt: str) -> None:
    options: dict[str, Any] = {"fmt": fmt, "scale": 5, "border": 2, "frame_style": "scan-me",
                               "frame_text": "Scan me", "logo_key": "menu", "dark": "#123456"}
    first = images.render(DEST_URL, **options)
    assert images.render(DEST_URL, **options) == first
    assert images.cache_key(DEST_URL, **options) == images.cache_key(DEST_URL, **options)
    assert images.cache_key(DEST_URL, **{**options, "scale": 6}) != images.cache_key(DEST_URL, **options)
    if fmt == "png":  # only the critical chunks: no tIME, tEXt, pHYs, ...
        kinds, pos = [], 8
        while pos < len(first):
            length = int.from_bytes(first[pos:pos + 4], "big")
            kinds.append(first[pos + 4:pos + 8])
            pos += 12 + length
        assert kinds == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]


# --- random styles and URLs ---------------------------------------------------------

_URL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#[]!$&'()*+,;=%"
_hex = st.integers(0, 0xFFFFFF).map(lambda v: f"#{v:06x}")


@st.composite
def styles(draw: st.DrawFn) -> dict[str, Any]:
    dark = draw(_hex)
    light = draw(_hex.filter(lambda c: luminance(c) >= luminance(dark) and contrast_ratio(dark, c) >= 3))
    return {"dark": dark, "light": light, "error": draw(st.sampled_from("lmqh")),
            "scale": draw(st.integers(2, 4)), "border": draw(st.integers(0, 6)),
            "frame_style": draw(st.sampled_from(FRAMES)),
            "frame_text": draw(st.text(st.characters(codec="latin-1"), max_size=40)),
            "logo_key": draw(st.sampled_from(LOGOS))}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(style=styles(), host=st.from_regex(r"[a-z0-9]{1,20}\.(com|org|de)", fullmatch=True),
       path=st.text(_URL_CHARS, max_size=2048 - 33), scheme=st.sampled_from(["http", "https"]),
       fmt=st.sampled_from(["png", "svg"]))
def test_random_styles_and_urls_decode(style: dict[str, Any], host: str, path: str, scheme: str,
                                       fmt: str) -> None:
    url = f"{scheme}://{host}/{path}"
    assert len(url) <= 2048
    image = images.render(url, fmt=fmt, **style)
    assert decode(fmt, image) == [url]


# --- the route ----------------------------------------------------------------------

from qrpro.services import codes as CODES  # noqa: E402

CODE_ID = "0b7e2c1e-4b5f-4c55-9a0e-2f7d8f1c0d11"
NOW = 1_713_288_000


@dataclass
class Api:
    resolver: Any
    caller: Any
    stored: dict[str, dict[str, Any]]
    calls: list[tuple[str, str, int | None]] = field(default_factory=list)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Api:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from lambdas.api.routes import qr as qr_routes
    from qrpro.api import errors
    from qrpro.domain.errors import NotFound
    from qrpro.domain.scope import Caller

    stored = {CODE_ID: {"id": CODE_ID, "shortcode": "aBc123x", "short_url": SHORT_URL, "url": DEST_URL,
                        "style_json": '{"dark": "#102030", "scale": 3, "border": 2}', "logo_key": "email",
                        "frame_style": "scan-me", "frame_text": "SCAN ME", "status": "active"}}
    calls: list[tuple[str, str, int | None]] = []

    def fake_get(scope: str, code_id: str, now: int | None = None, *, with_scans: bool = True) -> dict[str, Any]:
        calls.append((scope, code_id, None))
        if code_id not in stored:
            raise NotFound()
        return dict(stored[code_id])

    monkeypatch.setattr(CODES, "get", fake_get)
    resolver = APIGatewayRestResolver(enable_validation=True)
    errors.install(resolver, Logger(), [qr_routes.router])
    # include_router rebinds the module-level router to this resolver (its context and current event);
    # put the api function's resolver back afterwards so later tests in this process still reach it.
    monkeypatch.setattr(qr_routes.router, "api_resolver", getattr(qr_routes.router, "api_resolver", None),
                        raising=False)
    resolver.include_router(qr_routes.router)
    caller = Caller(user_id="u1", key_id="k1", email="a@example.com", scope="USER#u1", plan_name="business",
                    plan_status="active")
    return Api(resolver, caller, stored, calls)


def call(app: Api, query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         code_id: str = CODE_ID) -> dict[str, Any]:
    path = f"/api/codes/{code_id}/qr"
    event = {
        "resource": "/{proxy+}", "path": path, "httpMethod": "GET", "body": None, "isBase64Encoded": False,
        "headers": headers or {}, "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query, "multiValueQueryStringParameters":
            {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path[1:]}, "stageVariables": None,
        "requestContext": {"requestId": "req-1", "stage": "test", "path": path, "httpMethod": "GET",
                           "resourcePath": "/{proxy+}", "identity": {"sourceIp": "127.0.0.1"}},
    }
    app.resolver.append_context(caller=app.caller, now=NOW)  # what the pipeline does; resolve clears it
    return app.resolver.resolve(event, {})


def header(resp: dict[str, Any], name: str) -> str:
    for k, v in (resp.get("multiValueHeaders") or {}).items():
        if k.lower() == name.lower():
            return str(v[0])
    for k, v in (resp.get("headers") or {}).items():
        if k.lower() == name.lower():
            return str(v)
    raise KeyError(name)


def body_bytes(resp: dict[str, Any]) -> bytes:
    import base64

    if resp.get("isBase64Encoded"):
        return base64.b64decode(resp["body"])
    return str(resp["body"]).encode()


@pytest.mark.parametrize(("fmt", "ctype"), [("svg", "image/svg+xml"), ("png", "image/png"),
                                            ("pdf", "application/pdf")])
def test_route_formats(app: Api, fmt: str, ctype: str) -> None:
    resp = call(app, {"format": fmt})
    assert resp["statusCode"] == 200
    assert header(resp, "Content-Type") == ctype
    assert header(resp, "Cache-Control") == "private, max-age=300"
    assert re.fullmatch(r'"[0-9a-f]{32}"', header(resp, "ETag"))
    assert resp["isBase64Encoded"] is (fmt != "svg")
    assert decode(fmt, body_bytes(resp)) == [SHORT_URL]
    assert app.calls == [("USER#u1", CODE_ID, None)]


def test_route_default_is_dynamic_svg_with_the_code_style(app: Api) -> None:
    resp = call(app)
    assert header(resp, "Content-Type") == "image/svg+xml"
    body = body_bytes(resp)
    assert body == images.render(SHORT_URL, fmt="svg", dark="#102030", scale=3, border=2, frame_style="scan-me",
                                 frame_text="SCAN ME", logo_key="email")
    assert decode_svg(body) == [SHORT_URL]


def test_route_static_variant_encodes_the_destination(app: Api) -> None:
    dynamic = call(app, {"format": "png", "variant": "dynamic"})
    static = call(app, {"format": "png", "variant": "static"})
    assert decode_png(body_bytes(dynamic)) == [SHORT_URL]
    assert decode_png(body_bytes(static)) == [DEST_URL]
    assert header(dynamic, "ETag") != header(static, "ETag")


def test_route_query_overrides_style(app: Api) -> None:
    small = Image.open(io.BytesIO(body_bytes(call(app, {"format": "png"}))))
    big = Image.open(io.BytesIO(body_bytes(call(app, {"format": "png", "scale": "6", "border": "2"}))))
    assert big.size == (small.size[0] * 2, small.size[1] * 2)
    wide = Image.open(io.BytesIO(body_bytes(call(app, {"format": "png", "scale": "3", "border": "10"}))))
    assert wide.size[0] == small.size[0] + 2 * 8 * 3


def test_route_etag_and_304(app: Api) -> None:
    first = call(app, {"format": "png"})
    etag = header(first, "ETag")
    assert header(call(app, {"format": "png"}), "ETag") == etag
    again = call(app, {"format": "png"}, headers={"If-None-Match": etag})
    assert again["statusCode"] == 304 and again["body"] in ("", None)
    assert header(again, "ETag") == etag
    listed = call(app, {"format": "png"}, headers={"if-none-match": f'"other", W/{etag}'})
    assert listed["statusCode"] == 304
    stale = call(app, {"format": "png"}, headers={"If-None-Match": '"stale"'})
    assert stale["statusCode"] == 200
    assert header(call(app, {"format": "svg"}), "ETag") != etag
    app.stored[CODE_ID]["frame_text"] = "NEW TEXT"
    assert header(call(app, {"format": "png"}), "ETag") != etag


@pytest.mark.parametrize(("query", "field"), [
    ({"format": "gif"}, "format"), ({"format": ""}, "format"), ({"variant": "both"}, "variant"),
    ({"scale": "0"}, "scale"), ({"scale": "51"}, "scale"), ({"scale": "abc"}, "scale"), ({"scale": "2.5"}, "scale"),
    ({"border": "-1"}, "border"), ({"border": "21"}, "border"), ({"border": "x"}, "border"),
])
def test_route_query_validation(app: Api, query: dict[str, str], field: str) -> None:
    resp = call(app, query)
    assert resp["statusCode"] == 400
    import json

    body = json.loads(resp["body"])
    assert body["error"] == "validation_error" and body["field"] == field and body["message"]


def test_route_missing_code_is_404(app: Api) -> None:
    import json

    resp = call(app, {"format": "png"}, code_id="5b1a6c36-0c9f-4ed4-9d43-5d0f4f3b6a7e")
    assert resp["statusCode"] == 404
    assert json.loads(resp["body"])["error"] == "not_found"


def test_route_openapi_documents_the_images(app: Api) -> None:
    schema = app.resolver.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True)
    op = schema["paths"]["/api/codes/{code_id}/qr"]["get"]
    assert set(op["responses"]["200"]["content"]) == {"image/svg+xml", "image/png", "application/pdf"}
    assert {"304", "400", "404"} <= set(op["responses"])
    assert {p["name"] for p in op["parameters"]} >= {"code_id", "format", "variant", "scale", "border"}
