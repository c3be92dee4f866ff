"""Preset centre logos for QR images (docs/api.md 6.9, ``logo_key``).

Each preset is a small generic glyph drawn for this project out of the shapes
of ``shapes.py`` in a unit box (0..1, y pointing down). There is no
third-party artwork here: brand presets are plain letters or generic shapes
(a camera, a play button, a chat bubble, ...).

Shapes are painted in order; ``ink=True`` paints in the glyph colour (the
code's light colour, once placed on the dark badge), ``ink=False`` cuts back
to the badge colour. Painting order is the only "boolean" operation, so the
same list draws identically in SVG, PDF and with Pillow.

The keys are ``LogoKey`` of ``domain/codes.py``, the one list of them.
"""

from __future__ import annotations

import math
from typing import cast, get_args

from qrpro.domain.codes import LogoKey
from qrpro.images.shapes import Ellipse, Point, Polygon, Rect, Shape

KEYS: tuple[str, ...] = get_args(LogoKey.__value__)


def _sector(cx: float, cy: float, r: float, a0: float, a1: float, ink: bool, steps: int = 12) -> Polygon:
    """A pie slice from angle a0 to a1 (degrees, y down), as a polygon."""
    pts: list[Point] = [(cx, cy)]
    for i in range(steps + 1):
        a = math.radians(a0 + (a1 - a0) * i / steps)
        pts.append((round(cx + r * math.cos(a), 4), round(cy + r * math.sin(a), 4)))
    return Polygon(tuple(pts), ink)


def _wifi() -> tuple[Shape, ...]:
    out: list[Shape] = []
    for i, r in enumerate((0.74, 0.61, 0.49, 0.36, 0.24, 0.12)):
        out.append(_sector(0.5, 0.84, r, 225, 315, ink=i % 2 == 0))
    out.append(Ellipse(0.5, 0.80, 0.085, 0.085))
    return tuple(out)


PRESETS: dict[LogoKey, tuple[Shape, ...]] = {
    # two chain links
    "link": (
        Rect(0.02, 0.32, 0.58, 0.36, 0.18), Rect(0.12, 0.42, 0.38, 0.16, 0.08, ink=False),
        Rect(0.40, 0.32, 0.58, 0.36, 0.18), Rect(0.50, 0.42, 0.38, 0.16, 0.08, ink=False),
        Rect(0.50, 0.32, 0.10, 0.10),
    ),
    # an envelope
    "email": (
        Rect(0.06, 0.20, 0.88, 0.60, 0.06),
        Polygon(((0.06, 0.22), (0.5, 0.54), (0.94, 0.22), (0.94, 0.33), (0.5, 0.65), (0.06, 0.33)), ink=False),
    ),
    # a mobile phone
    "phone": (
        Rect(0.27, 0.04, 0.46, 0.92, 0.09), Rect(0.33, 0.14, 0.34, 0.62, ink=False),
        Ellipse(0.5, 0.86, 0.045, 0.045, ink=False),
    ),
    # the generic wireless fan: three arcs and a dot
    "wifi": _wifi(),
    # a page with a folded corner and text lines
    "pdf": (
        Polygon(((0.20, 0.04), (0.62, 0.04), (0.82, 0.24), (0.82, 0.96), (0.20, 0.96))),
        Polygon(((0.62, 0.04), (0.62, 0.24), (0.82, 0.24)), ink=False),
        Rect(0.30, 0.40, 0.42, 0.07, ink=False), Rect(0.30, 0.55, 0.42, 0.07, ink=False),
        Rect(0.30, 0.70, 0.28, 0.07, ink=False),
    ),
    # fork and knife
    "menu": (
        Rect(0.18, 0.06, 0.06, 0.30, 0.03), Rect(0.29, 0.06, 0.06, 0.30, 0.03), Rect(0.40, 0.06, 0.06, 0.30, 0.03),
        Rect(0.18, 0.30, 0.28, 0.12, 0.06), Rect(0.28, 0.36, 0.08, 0.58, 0.04),
        Rect(0.60, 0.06, 0.18, 0.50, 0.09), Rect(0.64, 0.50, 0.09, 0.44, 0.045),
    ),
    # a generic camera (body, lens, flash)
    "instagram": (
        Rect(0.04, 0.26, 0.92, 0.62, 0.10), Rect(0.30, 0.14, 0.34, 0.16, 0.04),
        Ellipse(0.5, 0.57, 0.22, 0.22, ink=False), Ellipse(0.5, 0.57, 0.13, 0.13),
        Ellipse(0.82, 0.38, 0.045, 0.045, ink=False),
    ),
    # the letter f
    "facebook": (
        Rect(0.38, 0.06, 0.34, 0.36, 0.17), Rect(0.54, 0.20, 0.24, 0.26, ink=False),
        Rect(0.38, 0.24, 0.16, 0.70), Rect(0.24, 0.42, 0.44, 0.12),
    ),
    # the letters in
    "linkedin": (
        Ellipse(0.24, 0.18, 0.09, 0.09), Rect(0.15, 0.34, 0.18, 0.60),
        Rect(0.42, 0.34, 0.44, 0.60, 0.20), Rect(0.59, 0.52, 0.10, 0.44, ink=False),
        Rect(0.42, 0.52, 0.17, 0.42),
    ),
    # the letter X
    "x": (
        Polygon(((0.10, 0.06), (0.30, 0.06), (0.90, 0.94), (0.70, 0.94))),
        Polygon(((0.70, 0.06), (0.90, 0.06), (0.30, 0.94), (0.10, 0.94))),
    ),
    # a play button
    "youtube": (Polygon(((0.26, 0.14), (0.26, 0.86), (0.86, 0.5))),),
    # a chat bubble
    "whatsapp": (
        Ellipse(0.5, 0.45, 0.44, 0.38), Polygon(((0.18, 0.62), (0.08, 0.94), (0.44, 0.80))),
        Ellipse(0.32, 0.45, 0.06, 0.06, ink=False), Ellipse(0.5, 0.45, 0.06, 0.06, ink=False),
        Ellipse(0.68, 0.45, 0.06, 0.06, ink=False),
    ),
}


def glyph(key: str) -> tuple[Shape, ...]:
    """The shapes of a preset; ValueError for an unknown key."""
    if key not in KEYS:
        raise ValueError(f"unknown logo_key {key!r}")
    return PRESETS[cast(LogoKey, key)]
