"""Caption metrics: advance widths of Helvetica-Bold, the PDF's base-14 font.

The layout sizes the caption with these and the PDF writer centres it with
them (a base-14 font is not embedded, so the viewer sets it with exactly
these widths). No installed library ships them (Pillow's bundled font is a
different face; segno has no text), hence the table (docs/qr-images.md).
"""

from __future__ import annotations

import unicodedata

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
