"""Printable QR images (docs/api.md 6.9, docs/qr-images.md): SVG, PNG and PDF
from one scene.

``layout`` turns the data and the code's styling into a ``Scene`` (module
units, shapes of ``shapes.py``); one writer per format turns it into bytes
(``svg``, ``png``, ``pdf``). Output is deterministic: the same inputs with the
same library versions give the same bytes. ``cache_key`` hashes exactly those
inputs and versions, so it serves as a strong ETag without rendering.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from typing import Any

import segno

from qrpro.domain.style import DEFAULTS, QrFormat, QrVariant
from qrpro.images import pdf, png, svg
from qrpro.images.layout import FRAME_STYLES, DataTooLong, Scene, layout, logo_patch

__all__ = ["CONTENT_TYPES", "FRAME_STYLES", "RENDER_VERSION", "DataTooLong", "QrFormat", "QrVariant", "Scene",
           "cache_key", "layout", "logo_patch", "render"]

CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}
RENDER_VERSION = "1"  # bump whenever the drawing changes: it is part of the ETag
_WRITERS: dict[str, Callable[[Scene, int], bytes]] = {"svg": svg.write, "png": png.write, "pdf": pdf.write}


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
