"""Printable QR images (docs/api.md 6.9): SVG, PNG and PDF from one scene.

segno computes the symbol (the module matrix). Everything else (quiet zone,
frame, caption, centre logo) is laid out once, in module units, as a short
list of primitives (a `Scene`), which three small writers turn into bytes:

- SVG: hand-written XML (modules as one path; caption as ``<text>``),
- PDF: a hand-written one-page PDF 1.4 with vector content and the base-14
  font Helvetica-Bold (nothing embedded, no Info dictionary, no dates),
- PNG: Pillow, a 2-colour palette image (1 bit per pixel), caption drawn
  with Pillow's bundled default font (no system fonts needed).

Output is deterministic: the same inputs with the same library versions give
the same bytes (no timestamps anywhere). ``cache_key`` hashes exactly those
inputs and versions, so it can serve as a strong ETag without rendering.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import segno
from typing_extensions import TypeAliasType

from qrpro.domain import logos
from qrpro.domain.style import DEFAULTS, ERROR_LEVELS

QrFormat = TypeAliasType("QrFormat", Literal["svg", "png", "pdf"])
QrVariant = TypeAliasType("QrVariant", Literal["dynamic", "static"])
FORMATS: tuple[str, ...] = ("svg", "png", "pdf")
CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}
FRAME_STYLES = ("none", "scan-me", "banner-top", "banner-bottom")
RENDER_VERSION = "1"  # bump whenever the drawing changes: it is part of the ETag
DEFAULT_CAPTION = "SCAN ME"
FRAME_MIN_QUIET = 2  # a frame never comes closer than this to the symbol (modules)
LOGO_MAX_SIDE = 0.30  # logo patch side <= 30% of the symbol side: area <= 9%
FONT_SVG = "Helvetica, Arial, sans-serif"


class DataTooLong(ValueError):
    """The data does not fit in a QR code (version 40) at any error level."""


# --- the scene --------------------------------------------------------------

@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    r: float = 0.0
    dark: bool = True


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float
    dark: bool = True


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]
    dark: bool = True


@dataclass(frozen=True)
class Modules:
    """Dark modules of the symbol as horizontal runs (row, column, length),
    offset by (x, y); integer module units."""

    x: int
    y: int
    runs: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Text:
    cx: float  # horizontal centre
    baseline: float
    size: float  # font size (em) in modules
    max_width: float
    text: str
    dark: bool = False


Op = Rect | Ellipse | Polygon | Modules | Text


@dataclass
class Scene:
    width: int
    height: int
    dark: str
    light: str
    ops: list[Op] = field(default_factory=list)
    version: int = 0
    error: str = "m"
    logo: bool = False


# --- the symbol ---------------------------------------------------------------

def make_symbol(data: str, error: str, with_logo: bool) -> tuple[segno.QRCode, bool]:
    """segno's QR code for ``data`` and whether a logo can go on it.

    A logo needs level h. If the data is too long for h, the logo is left out.
    ``error`` is a minimum: segno raises it when that costs no extra size; if
    the data is too long for it, the highest level that fits is used.
    Raises DataTooLong when nothing fits.
    """
    if error not in ERROR_LEVELS:
        raise ValueError(f"unknown error level {error!r}")
    if with_logo:
        try:
            return segno.make_qr(data, error="h", boost_error=True), True
        except segno.DataOverflowError:
            pass
    for level in reversed(ERROR_LEVELS[: ERROR_LEVELS.index(error) + 1]):
        try:
            return segno.make_qr(data, error=level, boost_error=True), False
        except segno.DataOverflowError:
            continue
    raise DataTooLong("the data does not fit in a QR code")


def logo_patch(size: int) -> int:
    """Side (modules, odd like the symbol, so it is centred) of the light patch
    that holds the logo: at most LOGO_MAX_SIDE of the side, about 6-9% of the area."""
    side = int(size * LOGO_MAX_SIDE)
    return side - 1 if side % 2 == 0 else side


def _runs(matrix: list[bytearray]) -> tuple[tuple[int, int, int], ...]:
    out: list[tuple[int, int, int]] = []
    for y, row in enumerate(matrix):
        x, n = 0, len(row)
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                out.append((y, start, x - start))
            else:
                x += 1
    return tuple(out)


# Helvetica-Bold advance widths (1/1000 em) for ASCII 32..126 (Adobe core font metrics).
_HELVB = (
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
)


def text_width(text: str) -> float:
    """Width in em of ``text`` set in Helvetica-Bold (generous for non-ASCII)."""
    total = 0
    for ch in text:
        code = ord(ch)
        if 32 <= code <= 126:
            total += _HELVB[code - 32]
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            total += 1000
        else:
            total += 722
    return total / 1000


def caption_of(frame_text: str | None) -> str:
    """The caption as drawn: control characters dropped, blanks collapsed;
    empty means DEFAULT_CAPTION."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in frame_text or "")
    text = " ".join(text.split())
    return text or DEFAULT_CAPTION


def layout(data: str, *, dark: str, light: str, error: str, border: int, frame_style: str,
           frame_text: str | None, logo_key: str | None) -> Scene:
    """The scene in module units (symbol and frame on whole modules)."""
    if frame_style not in FRAME_STYLES:
        raise ValueError(f"unknown frame_style {frame_style!r}")
    shapes = logos.glyph(logo_key) if logo_key else ()
    qr, with_logo = make_symbol(data, error, bool(shapes))
    matrix = [bytearray(1 if v else 0 for v in row) for row in qr.matrix]
    n = len(matrix)
    quiet = border if frame_style == "none" else max(border, FRAME_MIN_QUIET)
    side = n + 2 * quiet
    band = max(5, round(side * 0.16))
    outline, radius, gap = 1, 2, 1
    ops: list[Op] = []
    if frame_style == "none":
        width, height, sx, sy = side, side, quiet, quiet
        band_box = None
    elif frame_style == "scan-me":
        width = side + 2 * outline
        height = width + gap + band
        ops += [Rect(0, 0, width, width, radius), Rect(outline, outline, side, side, radius - outline, dark=False),
                Rect(0, width + gap, width, band, radius),
                Polygon(((width / 2 - 1.5, width + gap), (width / 2, width), (width / 2 + 1.5, width + gap)))]
        sx = sy = outline + quiet
        band_box = (0.0, float(width + gap), float(width), float(band))
    elif frame_style == "banner-top":
        width, height = side, side + band
        ops += [Rect(0, 0, width, band, radius), Rect(0, band - radius, width, radius)]
        sx, sy = quiet, band + quiet
        band_box = (0.0, 0.0, float(width), float(band))
    else:  # banner-bottom
        width, height = side, side + band
        ops += [Rect(0, side, width, band, radius), Rect(0, side, width, radius)]
        sx, sy = quiet, quiet
        band_box = (0.0, float(side), float(width), float(band))

    if with_logo:
        p = logo_patch(n)
        o = (n - p) // 2
        for y in range(o, o + p):
            matrix[y][o:o + p] = bytes(p)
    ops.append(Modules(sx, sy, _runs(matrix)))
    if with_logo:
        bx, by, bw = sx + o + 0.5, sy + o + 0.5, p - 1.0
        ops.append(Rect(bx, by, bw, bw, round(bw * 0.22, 3)))
        ops += _glyph_ops(shapes, bx + bw * 0.16, by + bw * 0.16, bw * 0.68)

    if band_box is not None:
        bx0, by0, bw0, bh0 = band_box
        caption = caption_of(frame_text)
        room = bw0 - 2 * max(1.0, bw0 * 0.06)
        size = min(bh0 * 0.56, room / max(text_width(caption), 0.5))
        ops.append(Text(bx0 + bw0 / 2, by0 + bh0 / 2 + 0.36 * size, round(size, 3), room, caption))
    return Scene(width, height, dark, light, ops, version=qr.version if isinstance(qr.version, int) else 0,
                 error=str(qr.error).lower(), logo=with_logo)


def _glyph_ops(shapes: tuple[logos.Shape, ...], x: float, y: float, s: float) -> list[Op]:
    def pt(px: float, py: float) -> tuple[float, float]:
        return (round(x + px * s, 4), round(y + py * s, 4))

    out: list[Op] = []
    for sh in shapes:
        dark = not sh.ink  # glyph ink is the light colour on the dark badge
        if isinstance(sh, logos.Box):
            (x0, y0) = pt(sh.x, sh.y)
            out.append(Rect(x0, y0, round(sh.w * s, 4), round(sh.h * s, 4), round(sh.r * s, 4), dark))
        elif isinstance(sh, logos.Oval):
            (cx, cy) = pt(sh.cx, sh.cy)
            out.append(Ellipse(cx, cy, round(sh.rx * s, 4), round(sh.ry * s, 4), dark))
        else:
            out.append(Polygon(tuple(pt(a, b) for a, b in sh.points), dark))
    return out


# --- writers -------------------------------------------------------------------

def _n(v: float) -> str:
    """A compact, deterministic decimal (no exponent)."""
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _svg(scene: Scene, scale: int) -> bytes:
    from xml.sax.saxutils import escape

    def fill(dark: bool) -> str:
        return scene.dark if dark else scene.light

    w, h = scene.width, scene.height
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * scale}" height="{h * scale}" '
           f'viewBox="0 0 {w} {h}">',
           f'<rect width="{w}" height="{h}" fill="{scene.light}"/>']
    for op in scene.ops:
        if isinstance(op, Modules):
            d = "".join(f"M{op.x + c} {op.y + r}h{k}v1h-{k}z" for r, c, k in op.runs)
            out.append(f'<path fill="{scene.dark}" shape-rendering="crispEdges" d="{d}"/>')
        elif isinstance(op, Rect):
            rx = f' rx="{_n(op.r)}"' if op.r else ""
            out.append(f'<rect x="{_n(op.x)}" y="{_n(op.y)}" width="{_n(op.w)}" height="{_n(op.h)}"{rx} '
                       f'fill="{fill(op.dark)}"/>')
        elif isinstance(op, Ellipse):
            out.append(f'<ellipse cx="{_n(op.cx)}" cy="{_n(op.cy)}" rx="{_n(op.rx)}" ry="{_n(op.ry)}" '
                       f'fill="{fill(op.dark)}"/>')
        elif isinstance(op, Polygon):
            pts = " ".join(f"{_n(a)},{_n(b)}" for a, b in op.points)
            out.append(f'<polygon points="{pts}" fill="{fill(op.dark)}"/>')
        else:
            out.append(f'<text x="{_n(op.cx)}" y="{_n(op.baseline)}" font-family="{FONT_SVG}" '
                       f'font-weight="bold" font-size="{_n(op.size)}" text-anchor="middle" '
                       f'fill="{fill(op.dark)}">{escape(op.text)}</text>')
    out.append("</svg>\n")
    return "".join(out).encode("utf-8")


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _pil_font(px: float) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=max(1.0, px))


STRIP_PIXELS = 1 << 22  # PNG is drawn in horizontal strips of about 4 Mpx: memory stays flat


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(scene: Scene, scale: int) -> bytes:
    """A 1-bit palette PNG. Pillow rasterises the shapes and the caption strip
    by strip (bi-level, no anti-aliasing); the PNG container is written here
    (no ancillary chunks: no time, no text, nothing variable)."""
    from PIL import Image, ImageDraw

    s = scale
    width, height = scene.width * s, scene.height * s
    rowbytes = (width + 7) // 8
    strip = max(1, min(height, STRIP_PIXELS // width))
    fonts: dict[float, Any] = {}
    comp = zlib.compressobj(6)
    idat: list[bytes] = []
    zero, prev = bytes(rowbytes), b""
    for y0 in range(0, height, strip):
        h = min(strip, height - y0)
        im = Image.new("1", (width, h), 0)
        _draw_strip(ImageDraw.Draw(im), scene, s, y0, h, fonts)
        raw = im.tobytes()  # packed, MSB first; a set bit is a dark pixel (palette index 1)
        rows = []
        for i in range(0, len(raw), rowbytes):
            row = raw[i:i + rowbytes]
            # PNG filter "Up" turns a row equal to the previous one into zeros; others go unfiltered.
            rows.append(b"\x02" + zero if row == prev else b"\x00" + row)
            prev = row
        idat.append(comp.compress(b"".join(rows)))
    idat.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)  # 1 bit, palette
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"PLTE", bytes([*_rgb(scene.light), *_rgb(scene.dark)]))
            + _png_chunk(b"IDAT", b"".join(idat)) + _png_chunk(b"IEND", b""))


def _draw_strip(draw: Any, scene: Scene, s: int, y0: int, h: int, fonts: dict[float, Any]) -> None:
    """Draw the scene rows y0..y0+h (pixels) onto a strip image."""
    for op in scene.ops:
        if isinstance(op, Modules):
            ox, oy = op.x * s, op.y * s - y0
            first, last = (-oy) // s, (h - 1 - oy) // s  # module rows that touch the strip
            rect = draw.rectangle
            lo = bisect.bisect_left(op.runs, (first, -1, -1))
            for r, c, k in op.runs[lo:]:
                if r > last:
                    break
                rect((ox + c * s, oy + r * s, ox + (c + k) * s - 1, oy + (r + 1) * s - 1), fill=1)
        elif isinstance(op, Rect):
            box = (round(op.x * s), round(op.y * s) - y0, round((op.x + op.w) * s) - 1,
                   round((op.y + op.h) * s) - 1 - y0)
            if box[2] < box[0] or box[3] < box[1] or box[3] < 0 or box[1] >= h:
                continue
            if op.r * s >= 1:
                draw.rounded_rectangle(box, radius=round(op.r * s), fill=int(op.dark))
            else:
                draw.rectangle(box, fill=int(op.dark))
        elif isinstance(op, Ellipse):
            box = (round((op.cx - op.rx) * s), round((op.cy - op.ry) * s) - y0,
                   round((op.cx + op.rx) * s) - 1, round((op.cy + op.ry) * s) - 1 - y0)
            if box[2] >= box[0] and box[3] >= box[1] and box[3] >= 0 and box[1] < h:
                draw.ellipse(box, fill=int(op.dark))
        elif isinstance(op, Polygon):
            draw.polygon([(a * s, b * s - y0) for a, b in op.points], fill=int(op.dark))
        elif (op.baseline - 1.5 * op.size) * s < y0 + h and (op.baseline + op.size) * s > y0:
            _png_text(draw, op, s, y0, fonts)


def _png_text(draw: Any, op: Text, s: int, y0: int, fonts: dict[float, Any]) -> None:
    from PIL import ImageFont

    px = op.size * s
    if px not in fonts:
        font = _pil_font(px)
        if isinstance(font, ImageFont.FreeTypeFont):
            width = font.getlength(op.text)
            if width > op.max_width * s:  # the bundled font is not Helvetica: shrink to fit
                font = _pil_font(px * op.max_width * s / width)
        fonts[px] = font
    font = fonts[px]
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text((op.cx * s, op.baseline * s - y0), op.text, fill=int(op.dark), font=font, anchor="ms")
    else:  # pragma: no cover - Pillow without FreeType: its small bitmap font, centred by hand
        x = op.cx * s - draw.textlength(op.text, font=font) / 2
        draw.text((x, op.baseline * s - y0 - 10), op.text, fill=int(op.dark), font=font)


def _pdf_str(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    out = bytearray(b"(")
    for b in raw:
        if b in b"()\\":
            out += b"\\" + bytes([b])
        elif 32 <= b < 127:
            out.append(b)
        else:
            out += f"\\{b:03o}".encode()
    out += b")"
    return bytes(out)


_K = 0.5523  # Bezier circle constant


def _pdf_rrect(x: float, y: float, w: float, h: float, r: float) -> str:
    r = min(r, w / 2, h / 2)
    if r <= 0:
        return f"{_n(x)} {_n(y)} {_n(w)} {_n(h)} re\n"
    k = r * (1 - _K)
    x1, y1 = x + w, y + h
    p = [f"{_n(x + r)} {_n(y)} m", f"{_n(x1 - r)} {_n(y)} l",
         f"{_n(x1 - k)} {_n(y)} {_n(x1)} {_n(y + k)} {_n(x1)} {_n(y + r)} c",
         f"{_n(x1)} {_n(y1 - r)} l",
         f"{_n(x1)} {_n(y1 - k)} {_n(x1 - k)} {_n(y1)} {_n(x1 - r)} {_n(y1)} c",
         f"{_n(x + r)} {_n(y1)} l",
         f"{_n(x + k)} {_n(y1)} {_n(x)} {_n(y1 - k)} {_n(x)} {_n(y1 - r)} c",
         f"{_n(x)} {_n(y + r)} l",
         f"{_n(x)} {_n(y + k)} {_n(x + k)} {_n(y)} {_n(x + r)} {_n(y)} c", "h"]
    return "\n".join(p) + "\n"


def _pdf_ellipse(cx: float, cy: float, rx: float, ry: float) -> str:
    kx, ky = rx * _K, ry * _K
    return "\n".join([
        f"{_n(cx + rx)} {_n(cy)} m",
        f"{_n(cx + rx)} {_n(cy + ky)} {_n(cx + kx)} {_n(cy + ry)} {_n(cx)} {_n(cy + ry)} c",
        f"{_n(cx - kx)} {_n(cy + ry)} {_n(cx - rx)} {_n(cy + ky)} {_n(cx - rx)} {_n(cy)} c",
        f"{_n(cx - rx)} {_n(cy - ky)} {_n(cx - kx)} {_n(cy - ry)} {_n(cx)} {_n(cy - ry)} c",
        f"{_n(cx + kx)} {_n(cy - ry)} {_n(cx + rx)} {_n(cy - ky)} {_n(cx + rx)} {_n(cy)} c", "h"]) + "\n"


def _pdf(scene: Scene, scale: int) -> bytes:
    w, h = scene.width * scale, scene.height * scale

    def colour(dark: bool) -> str:
        r, g, b = _rgb(scene.dark if dark else scene.light)
        return f"{_n(r / 255)} {_n(g / 255)} {_n(b / 255)} rg\n"

    # Draw in module units with y pointing down, like the other writers.
    parts = [f"{scale} 0 0 -{scale} 0 {h} cm\n", colour(False), f"0 0 {scene.width} {scene.height} re f\n"]
    for op in scene.ops:
        if isinstance(op, Modules):
            parts.append(colour(True))
            parts.extend(f"{op.x + c} {op.y + r} {k} 1 re\n" for r, c, k in op.runs)
            parts.append("f\n")
        elif isinstance(op, Rect):
            parts += [colour(op.dark), _pdf_rrect(op.x, op.y, op.w, op.h, op.r), "f\n"]
        elif isinstance(op, Ellipse):
            parts += [colour(op.dark), _pdf_ellipse(op.cx, op.cy, op.rx, op.ry), "f\n"]
        elif isinstance(op, Polygon):
            (x0, y0), *rest = op.points
            path = f"{_n(x0)} {_n(y0)} m\n" + "".join(f"{_n(a)} {_n(b)} l\n" for a, b in rest) + "h f\n"
            parts += [colour(op.dark), path]
        else:
            tw = text_width(op.text) * op.size
            size = op.size if tw <= op.max_width else op.size * op.max_width / tw
            x = op.cx - text_width(op.text) * size / 2
            parts.append(colour(op.dark))
            parts.append(f"BT /F1 {_n(size)} Tf 1 0 0 -1 {_n(x)} {_n(op.baseline)} Tm ")
            parts.append(_pdf_str(op.text).decode("latin-1") + " Tj ET\n")
    content = zlib.compress("".join(parts).encode("latin-1"), 6)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] /Contents 4 0 R "
        f"/Resources << /Font << /F1 5 0 R >> >> >>".encode(),
        f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode() + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


_WRITERS = {"svg": _svg, "png": _png, "pdf": _pdf}


def render(data: str, *, fmt: str = "svg", dark: str = DEFAULTS["dark"], light: str = DEFAULTS["light"],
           error: str = DEFAULTS["error"], scale: int = DEFAULTS["scale"], border: int = DEFAULTS["border"],
           frame_style: str = "none", frame_text: str | None = None, logo_key: str | None = None) -> bytes:
    """The QR image of ``data`` as bytes. ``dark``/``light`` are ``#rrggbb``;
    ``scale`` is pixels (SVG, PNG) or points (PDF) per module; ``border`` the
    quiet zone in modules (at least FRAME_MIN_QUIET inside a frame)."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}")
    if scale < 1 or border < 0:
        raise ValueError("scale must be >= 1 and border >= 0")
    scene = layout(data, dark=dark, light=light, error=error, border=border, frame_style=frame_style,
                   frame_text=frame_text, logo_key=logo_key)
    return _WRITERS[fmt](scene, scale)


def _versions(fmt: str) -> dict[str, str]:
    out = {"render": RENDER_VERSION, "segno": segno.__version__}
    if fmt == "png":
        import PIL

        out["pillow"] = PIL.__version__
        out["zlib"] = zlib.ZLIB_RUNTIME_VERSION
    elif fmt == "pdf":
        out["zlib"] = zlib.ZLIB_RUNTIME_VERSION
    return out


def cache_key(data: str, **options: Any) -> str:
    """A digest of everything the bytes of ``render(data, **options)`` depend
    on (inputs and library versions): usable as a strong ETag."""
    blob = json.dumps({"data": data, "options": options, "versions": _versions(str(options.get("fmt", "svg")))},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
