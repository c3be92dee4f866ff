"""SVG writer: the scene as hand-written XML (docs/qr-images.md says why not
segno's writer): modules as one path of horizontal runs, shapes as
``rect``/``ellipse``/``polygon``, the caption as ``<text>`` in the viewer's
Helvetica/Arial bold."""

from __future__ import annotations

from xml.sax.saxutils import escape

from qrpro.images.layout import Modules, Op, Scene
from qrpro.images.shapes import Ellipse, Polygon, Rect, num

FONT = "Helvetica, Arial, sans-serif"


def _element(scene: Scene, op: Op) -> str:
    if isinstance(op, Modules):
        d = "".join(f"M{op.x + c} {op.y + r}h{k}v1h-{k}z" for r, c, k in op.runs)
        return f'<path fill="{scene.dark}" shape-rendering="crispEdges" d="{d}"/>'
    fill = scene.colour(op.ink)
    if isinstance(op, Rect):
        rx = f' rx="{num(op.r)}"' if op.r else ""
        return f'<rect x="{num(op.x)}" y="{num(op.y)}" width="{num(op.w)}" height="{num(op.h)}"{rx} fill="{fill}"/>'
    if isinstance(op, Ellipse):
        return f'<ellipse cx="{num(op.cx)}" cy="{num(op.cy)}" rx="{num(op.rx)}" ry="{num(op.ry)}" fill="{fill}"/>'
    if isinstance(op, Polygon):
        pts = " ".join(f"{num(a)},{num(b)}" for a, b in op.points)
        return f'<polygon points="{pts}" fill="{fill}"/>'
    return (f'<text x="{num(op.cx)}" y="{num(op.baseline)}" font-family="{FONT}" font-weight="bold" '
            f'font-size="{num(op.size)}" text-anchor="middle" fill="{fill}">{escape(op.text)}</text>')


def write(scene: Scene, scale: int) -> bytes:
    w, h = scene.width, scene.height
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * scale}" height="{h * scale}" viewBox="0 0 {w} {h}">',
           f'<rect width="{w}" height="{h}" fill="{scene.light}"/>']
    out += [_element(scene, op) for op in scene.ops]
    out.append("</svg>\n")
    return "".join(out).encode("utf-8")
