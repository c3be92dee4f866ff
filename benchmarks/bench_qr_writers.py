"""QR image writers against what segno and Pillow do themselves (docs/qr-images.md).

Run from the repository root:

    .venv/bin/python benchmarks/bench_qr_writers.py
    .venv/bin/python benchmarks/bench_qr_writers.py --repeat 5

Each row runs in a fresh interpreter (peak RSS = ru_maxrss of that process,
interpreter and imports included); time is the median of ``--repeat`` runs
after one warm-up. segno's writers can only draw the bare symbol (no frame,
caption or logo), so they are compared on that case; Pillow's PNG and PDF
encoders are compared on the full worst case (scale 50, 2,048-character URL,
frame), drawing the same scene in one piece.
"""

from __future__ import annotations

import io
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fresh  # benchmarks/fresh.py: this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]

URL_2048 = "https://example.com/landing?" + "q=" + "x" * (2048 - 30)  # as in bench_qr.py
SYMBOL = {"dark": "#000000", "light": "#ffffff", "error": "m", "border": 4, "frame_style": "none",
          "frame_text": None, "logo_key": None}
WORST = {**SYMBOL, "border": 20, "frame_style": "scan-me", "frame_text": "W" * 40}


def _segno(kind: str, scale: int) -> Callable[[], bytes]:
    import segno

    def run() -> bytes:
        out = io.BytesIO()
        segno.make_qr(URL_2048, error="m", boost_error=True).save(out, kind=kind, scale=scale, border=4,
                                                                 dark="#000000", light="#ffffff")
        return out.getvalue()
    return run


def _ours(fmt: str, scale: int, options: dict[str, object]) -> Callable[[], bytes]:
    from qrpro import images

    return lambda: images.render(URL_2048, fmt=fmt, scale=scale, **options)  # type: ignore[arg-type]


def _pillow(fmt: str, scale: int) -> Callable[[], bytes]:
    """The whole scene drawn into one palette image by the same drawing code, encoded by Pillow."""
    from PIL import Image, ImageDraw

    from qrpro import images
    from qrpro.images import png

    def run() -> bytes:
        scene = images.layout(URL_2048, **WORST)  # type: ignore[arg-type]
        w, h = scene.width * scale, scene.height * scale
        im = Image.new("P", (w, h), 0)
        im.putpalette([*scene.rgb(False), *scene.rgb(True)])
        png._draw_strip(ImageDraw.Draw(im), scene, scale, 0, h, {})
        out = io.BytesIO()
        im.save(out, format=fmt.upper())  # Pillow writes a 2-entry palette as 1 bit per pixel
        return out.getvalue()
    return run


CASES: list[tuple[str, Callable[[], Callable[[], bytes]]]] = [
    ("symbol, SVG, ours", lambda: _ours("svg", 10, SYMBOL)),
    ("symbol, SVG, segno", lambda: _segno("svg", 10)),
    ("symbol, PNG scale 10, ours", lambda: _ours("png", 10, SYMBOL)),
    ("symbol, PNG scale 10, segno", lambda: _segno("png", 10)),
    ("symbol, PDF, ours", lambda: _ours("pdf", 10, SYMBOL)),
    ("symbol, PDF, segno", lambda: _segno("pdf", 10)),
    ("worst, PNG scale 50, ours (strips)", lambda: _ours("png", 50, WORST)),
    ("worst, PNG scale 50, Pillow Image.save", lambda: _pillow("png", 50)),
    ("worst, PDF scale 50, ours (vector)", lambda: _ours("pdf", 50, WORST)),
    ("worst, PDF scale 10, Pillow (raster)", lambda: _pillow("pdf", 10)),
]


def run_case(index: int, repeat: int) -> dict[str, object]:
    name, make = CASES[index]
    fn = make()
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return {"case": name, "bytes": len(out), "s": statistics.median(times),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "dated": b"CreationDate" in out or b"tIME" in out}


def main() -> None:
    _, results = fresh.cases(__doc__ or "", __file__, len(CASES), run_case)
    print(f"{'case':40} {'bytes':>9} {'s':>7} {'RSS MB':>7} {'dated':>6}")
    for r in results:
        print(f"{r['case']:40} {r['bytes']:>9,} {r['s']:>7.3f} {r['rss_mb']:>7.0f} {r['dated']!s:>6}")

if __name__ == "__main__":
    main()
