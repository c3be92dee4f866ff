"""PNG writer: Pillow rasterises the scene strip by strip into bi-level
images; the 1-bit palette PNG container is written here, so memory stays flat
at any scale (docs/qr-images.md has the measurements against Pillow's own
``Image.save``). No ancillary chunks: no time, no text, nothing variable."""

from __future__ import annotations

import bisect
import struct
import zlib
from typing import Any

from qrpro.images.layout import Modules, Scene, Text
from qrpro.images.shapes import Ellipse, Polygon, Rect

STRIP_PIXELS = 1 << 22  # about 4 Mpx per strip


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write(scene: Scene, scale: int) -> bytes:
    from PIL import Image, ImageDraw  # lazily: SVG and PDF need no Pillow

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
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"PLTE", bytes([*scene.rgb(False), *scene.rgb(True)]))
            + _chunk(b"IDAT", b"".join(idat)) + _chunk(b"IEND", b""))


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
                draw.rounded_rectangle(box, radius=round(op.r * s), fill=int(op.ink))
            else:
                draw.rectangle(box, fill=int(op.ink))
        elif isinstance(op, Ellipse):
            box = (round((op.cx - op.rx) * s), round((op.cy - op.ry) * s) - y0,
                   round((op.cx + op.rx) * s) - 1, round((op.cy + op.ry) * s) - 1 - y0)
            if box[2] >= box[0] and box[3] >= box[1] and box[3] >= 0 and box[1] < h:
                draw.ellipse(box, fill=int(op.ink))
        elif isinstance(op, Polygon):
            draw.polygon([(a * s, b * s - y0) for a, b in op.points], fill=int(op.ink))
        elif (op.baseline - 1.5 * op.size) * s < y0 + h and (op.baseline + op.size) * s > y0:
            _text(draw, op, s, y0, fonts)


def _font(px: float) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=max(1.0, px))


def _text(draw: Any, op: Text, s: int, y0: int, fonts: dict[float, Any]) -> None:
    """The caption in Pillow's bundled font (no system fonts), shrunk to fit."""
    from PIL import ImageFont

    px = op.size * s
    if px not in fonts:
        font = _font(px)
        if isinstance(font, ImageFont.FreeTypeFont):
            width = font.getlength(op.text)
            if width > op.max_width * s:  # the bundled font is not Helvetica: shrink to fit
                font = _font(px * op.max_width * s / width)
        fonts[px] = font
    font = fonts[px]
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text((op.cx * s, op.baseline * s - y0), op.text, fill=int(op.ink), font=font, anchor="ms")
    else:  # pragma: no cover - Pillow without FreeType: its small bitmap font, centred by hand
        x = op.cx * s - draw.textlength(op.text, font=font) / 2
        draw.text((x, op.baseline * s - y0 - 10), op.text, fill=int(op.ink), font=font)
