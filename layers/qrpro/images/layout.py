"""The scene of a QR image, in module units: symbol, quiet zone, frame,
caption and logo patch, as a short list of primitives the writers draw.

segno computes the symbol (the module matrix); everything else is laid out
here once, so the three formats share identical geometry.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import get_args

import segno
from segno.utils import matrix_to_lines  # type: ignore[attr-defined]  # segno ships stubs only for its top level

from qrpro.domain.codes import FrameStyle
from qrpro.domain.style import ERROR_LEVELS
from qrpro.images import logos
from qrpro.images.fonts import text_width
from qrpro.images.shapes import Polygon, Rect, Shape, place

FRAME_STYLES: tuple[str, ...] = get_args(FrameStyle.__value__)
DEFAULT_CAPTION = "SCAN ME"
FRAME_MIN_QUIET = 2  # a frame never comes closer than this to the symbol (modules)
LOGO_MAX_SIDE = 0.30  # logo patch side <= 30% of the symbol side: area <= 9%
_OUTLINE, _RADIUS, _GAP = 1, 2, 1  # scan-me outline width, frame corner radius, gap above its tab


class DataTooLong(ValueError):
    """The data does not fit in a QR code (version 40) at any error level."""


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
    ink: bool = False  # the caption shows in the light colour on the dark band


Op = Shape | Modules | Text


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

    def colour(self, ink: bool) -> str:
        return self.dark if ink else self.light

    def rgb(self, ink: bool) -> tuple[int, int, int]:
        c = self.colour(ink)
        return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


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
    """The dark runs (row, column, length) of ``matrix``, found by segno (which
    also reports an empty run when the first row starts light: dropped)."""
    return tuple((y, x1, x2 - x1) for (x1, y), (x2, _) in matrix_to_lines(matrix, 0, 0) if x2 > x1)


def caption_of(frame_text: str | None) -> str:
    """The caption as drawn: control characters dropped, blanks collapsed;
    empty means DEFAULT_CAPTION."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in frame_text or "")
    text = " ".join(text.split())
    return text or DEFAULT_CAPTION


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    sx: int  # where the quiet zone + symbol block starts
    sy: int
    ops: list[Op]
    band: tuple[float, float, float, float] | None  # the caption's box (x, y, w, h)


def _frame(style: str, side: int) -> _Frame:
    """The frame around a ``side``-module square (symbol plus quiet zone)."""
    band = max(5, round(side * 0.16))
    if style == "none":
        return _Frame(side, side, 0, 0, [], None)
    if style == "scan-me":
        width = side + 2 * _OUTLINE
        tab = width + _GAP
        return _Frame(width, tab + band, _OUTLINE, _OUTLINE, [
            Rect(0, 0, width, width, _RADIUS), Rect(_OUTLINE, _OUTLINE, side, side, _RADIUS - _OUTLINE, ink=False),
            Rect(0, tab, width, band, _RADIUS),
            Polygon(((width / 2 - 1.5, tab), (width / 2, width), (width / 2 + 1.5, tab)))],
            (0.0, float(tab), float(width), float(band)))
    if style == "banner-top":
        return _Frame(side, side + band, 0, band,
                      [Rect(0, 0, side, band, _RADIUS), Rect(0, band - _RADIUS, side, _RADIUS)],
                      (0.0, 0.0, float(side), float(band)))
    if style == "banner-bottom":
        return _Frame(side, side + band, 0, 0,
                      [Rect(0, side, side, band, _RADIUS), Rect(0, side, side, _RADIUS)],
                      (0.0, float(side), float(side), float(band)))
    raise ValueError(f"unknown frame_style {style!r}")


def _caption(band: tuple[float, float, float, float], frame_text: str | None) -> Text:
    bx, by, bw, bh = band
    caption = caption_of(frame_text)
    room = bw - 2 * max(1.0, bw * 0.06)
    size = min(bh * 0.56, room / max(text_width(caption), 0.5))
    return Text(bx + bw / 2, by + bh / 2 + 0.36 * size, round(size, 3), room, caption)


def layout(data: str, *, dark: str, light: str, error: str, border: int, frame_style: str,
           frame_text: str | None, logo_key: str | None) -> Scene:
    """The scene in module units (symbol and frame on whole modules)."""
    if frame_style not in FRAME_STYLES:
        raise ValueError(f"unknown frame_style {frame_style!r}")
    glyph = logos.glyph(logo_key) if logo_key else ()
    qr, with_logo = make_symbol(data, error, bool(glyph))
    matrix = [bytearray(1 if v else 0 for v in row) for row in qr.matrix]
    n = len(matrix)
    quiet = border if frame_style == "none" else max(border, FRAME_MIN_QUIET)
    frame = _frame(frame_style, n + 2 * quiet)
    sx, sy = frame.sx + quiet, frame.sy + quiet
    ops = list(frame.ops)
    if with_logo:
        p = logo_patch(n)
        o = (n - p) // 2
        for y in range(o, o + p):
            matrix[y][o:o + p] = bytes(p)
    ops.append(Modules(sx, sy, _runs(matrix)))
    if with_logo:
        bx, by, bw = sx + o + 0.5, sy + o + 0.5, p - 1.0
        ops.append(Rect(bx, by, bw, bw, round(bw * 0.22, 3)))
        ops += place(glyph, bx + bw * 0.16, by + bw * 0.16, bw * 0.68, invert=True)
    if frame.band is not None:
        ops.append(_caption(frame.band, frame_text))
    return Scene(frame.width, frame.height, dark, light, ops, version=qr.version if isinstance(qr.version, int) else 0,
                 error=str(qr.error).lower(), logo=with_logo)
