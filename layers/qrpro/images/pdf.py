"""PDF writer: a hand-written one-page PDF 1.4, all vector, Flate-compressed
content, the caption in the base-14 font Helvetica-Bold (not embedded,
WinAnsiEncoding). No Info dictionary, no dates, no IDs: deterministic bytes.
docs/qr-images.md says why neither segno's nor Pillow's PDF output is used."""

from __future__ import annotations

import zlib

from qrpro.images.fonts import text_width
from qrpro.images.layout import Modules, Op, Scene
from qrpro.images.shapes import Ellipse, Polygon, Rect, num

_K = 0.5523  # Bezier circle constant


def _string(text: str) -> str:
    """A PDF literal string of ``text`` in WinAnsiEncoding (``?`` outside it)."""
    out = ["("]
    for b in text.encode("cp1252", errors="replace"):
        if b in b"()\\":
            out.append("\\" + chr(b))
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return "".join(out) + ")"


def _rrect(x: float, y: float, w: float, h: float, r: float) -> str:
    r = min(r, w / 2, h / 2)
    if r <= 0:
        return f"{num(x)} {num(y)} {num(w)} {num(h)} re\n"
    k = r * (1 - _K)
    x1, y1 = x + w, y + h
    p = [f"{num(x + r)} {num(y)} m", f"{num(x1 - r)} {num(y)} l",
         f"{num(x1 - k)} {num(y)} {num(x1)} {num(y + k)} {num(x1)} {num(y + r)} c",
         f"{num(x1)} {num(y1 - r)} l",
         f"{num(x1)} {num(y1 - k)} {num(x1 - k)} {num(y1)} {num(x1 - r)} {num(y1)} c",
         f"{num(x + r)} {num(y1)} l",
         f"{num(x + k)} {num(y1)} {num(x)} {num(y1 - k)} {num(x)} {num(y1 - r)} c",
         f"{num(x)} {num(y + r)} l",
         f"{num(x)} {num(y + k)} {num(x + k)} {num(y)} {num(x + r)} {num(y)} c", "h"]
    return "\n".join(p) + "\n"


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> str:
    kx, ky = rx * _K, ry * _K
    return "\n".join([
        f"{num(cx + rx)} {num(cy)} m",
        f"{num(cx + rx)} {num(cy + ky)} {num(cx + kx)} {num(cy + ry)} {num(cx)} {num(cy + ry)} c",
        f"{num(cx - kx)} {num(cy + ry)} {num(cx - rx)} {num(cy + ky)} {num(cx - rx)} {num(cy)} c",
        f"{num(cx - rx)} {num(cy - ky)} {num(cx - kx)} {num(cy - ry)} {num(cx)} {num(cy - ry)} c",
        f"{num(cx + kx)} {num(cy - ry)} {num(cx + rx)} {num(cy - ky)} {num(cx + rx)} {num(cy)} c", "h"]) + "\n"


def _colour(scene: Scene, ink: bool) -> str:
    r, g, b = scene.rgb(ink)
    return f"{num(r / 255)} {num(g / 255)} {num(b / 255)} rg\n"


def _op(scene: Scene, op: Op) -> str:
    if isinstance(op, Modules):
        return _colour(scene, True) + "".join(f"{op.x + c} {op.y + r} {k} 1 re\n" for r, c, k in op.runs) + "f\n"
    colour = _colour(scene, op.ink)
    if isinstance(op, Rect):
        return colour + _rrect(op.x, op.y, op.w, op.h, op.r) + "f\n"
    if isinstance(op, Ellipse):
        return colour + _ellipse(op.cx, op.cy, op.rx, op.ry) + "f\n"
    if isinstance(op, Polygon):
        (x0, y0), *rest = op.points
        return colour + f"{num(x0)} {num(y0)} m\n" + "".join(f"{num(a)} {num(b)} l\n" for a, b in rest) + "h f\n"
    # The viewer sets base-14 Helvetica-Bold with exactly these widths: shrink to fit, centre.
    tw = text_width(op.text) * op.size
    size = op.size if tw <= op.max_width else op.size * op.max_width / tw
    x = op.cx - text_width(op.text) * size / 2
    return colour + f"BT /F1 {num(size)} Tf 1 0 0 -1 {num(x)} {num(op.baseline)} Tm {_string(op.text)} Tj ET\n"


def write(scene: Scene, scale: int) -> bytes:
    w, h = scene.width * scale, scene.height * scale
    # Draw in module units with y pointing down, like the other writers.
    parts = [f"{scale} 0 0 -{scale} 0 {h} cm\n", _colour(scene, False), f"0 0 {scene.width} {scene.height} re f\n"]
    parts += [_op(scene, op) for op in scene.ops]
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
