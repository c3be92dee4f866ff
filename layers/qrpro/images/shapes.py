"""The one shape vocabulary of QR images: rectangles (optionally rounded),
ellipses and straight-edged polygons.

The scene (``layout.py``) and the preset logos (``logos.py``) both use these
types. ``ink`` says which of the two colours paints the shape: in the scene,
``ink=True`` is the code's dark colour; a logo is drawn as ink on a unit box
and ``placed`` on the dark badge with ``invert=True`` (the glyph shows in the
light colour, ``ink=False`` parts cut back to the badge).
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[float, float]


def num(v: float) -> str:
    """A compact, deterministic decimal (no exponent), as SVG and PDF write it."""
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _at(v: float) -> float:
    return round(v, 4)


@dataclass(frozen=True)
class Rect:
    """A rectangle; ``r`` > 0 rounds its corners."""

    x: float
    y: float
    w: float
    h: float
    r: float = 0.0
    ink: bool = True

    def placed(self, x: float, y: float, s: float, invert: bool) -> Rect:
        return Rect(_at(x + self.x * s), _at(y + self.y * s), _at(self.w * s), _at(self.h * s), _at(self.r * s),
                    self.ink != invert)


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float
    ink: bool = True

    def placed(self, x: float, y: float, s: float, invert: bool) -> Ellipse:
        return Ellipse(_at(x + self.cx * s), _at(y + self.cy * s), _at(self.rx * s), _at(self.ry * s),
                       self.ink != invert)


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    ink: bool = True

    def placed(self, x: float, y: float, s: float, invert: bool) -> Polygon:
        return Polygon(tuple((_at(x + a * s), _at(y + b * s)) for a, b in self.points), self.ink != invert)


Shape = Rect | Ellipse | Polygon


def place(shapes: tuple[Shape, ...], x: float, y: float, s: float, invert: bool = False) -> list[Shape]:
    """``shapes`` drawn in a unit box scaled to side ``s`` at (x, y)."""
    return [sh.placed(x, y, s, invert) for sh in shapes]
