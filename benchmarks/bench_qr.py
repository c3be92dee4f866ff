"""QR image rendering: time and peak memory of the worst cases (docs/api.md 6.9).

Run as a plain script from the repository root:

    .venv/bin/python benchmarks/bench_qr.py            # the table
    .venv/bin/python benchmarks/bench_qr.py --repeat 5

Each case runs in a fresh interpreter so that its peak RSS (ru_maxrss: the
whole process, interpreter and imports included) belongs to that case alone;
tracemalloc's peak (Python allocations only; Pillow's pixel buffers are not
counted) is printed too. Times are the median of ``--repeat`` renders after
one warm-up render, split into layout (segno: symbol and mask choice) and the
whole render.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import fresh  # benchmarks/fresh.py: this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]

# The longest destination docs/api.md allows: 2,048 ASCII characters (version 38 at level m;
# too long for level h, so the logo is dropped). V40 is the largest symbol any data can give.
URL_2048 = "https://example.com/landing?" + "q=" + "x" * (2048 - 30)
DATA_V40 = "https://example.com/" + "y" * (2331 - 20)  # fills version 40 at level m exactly
SHORT = "https://aqr.net/aBc123x"

CASES: list[tuple[str, str, dict[str, object]]] = [
    ("short url, defaults, png", SHORT, {"fmt": "png"}),
    ("short url, logo+frame, png, scale 50", SHORT,
     {"fmt": "png", "scale": 50, "border": 20, "logo_key": "wifi", "frame_style": "scan-me"}),
    ("2048-char url, h+logo+frame, png, scale 10", URL_2048,
     {"fmt": "png", "scale": 10, "border": 20, "error": "h", "logo_key": "wifi", "frame_style": "scan-me",
      "frame_text": "W" * 40}),
    ("2048-char url, h+logo+frame, png, scale 50", URL_2048,
     {"fmt": "png", "scale": 50, "border": 20, "error": "h", "logo_key": "wifi", "frame_style": "scan-me",
      "frame_text": "W" * 40}),
    ("v40 data, frame, png, scale 50", DATA_V40,
     {"fmt": "png", "scale": 50, "border": 20, "frame_style": "banner-bottom", "frame_text": "W" * 40}),
    ("2048-char url, h+logo+frame, svg, scale 50", URL_2048,
     {"fmt": "svg", "scale": 50, "border": 20, "error": "h", "logo_key": "wifi", "frame_style": "scan-me"}),
    ("2048-char url, h+logo+frame, pdf, scale 50", URL_2048,
     {"fmt": "pdf", "scale": 50, "border": 20, "error": "h", "logo_key": "wifi", "frame_style": "scan-me"}),
]


def run_case(index: int, repeat: int) -> dict[str, object]:
    from qrpro import images

    name, data, options = CASES[index]
    layout_opts = {k: v for k, v in options.items() if k not in ("fmt", "scale")}
    full = {"dark": "#000000", "light": "#ffffff", "error": "m", "border": 4, "frame_style": "none",
            "frame_text": None, "logo_key": None, **layout_opts}
    tracemalloc.start()
    out = images.render(data, **options)  # type: ignore[arg-type]  # warm-up
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    totals, layouts = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scene = images.layout(data, **full)  # type: ignore[arg-type]
        layouts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = images.render(data, **options)  # type: ignore[arg-type]
        totals.append(time.perf_counter() - t0)
    scale = int(options.get("scale", 10))  # type: ignore[call-overload]
    return {"case": name, "version": scene.version, "error": scene.error, "logo": scene.logo,
            "modules": f"{scene.width}x{scene.height}",
            "pixels": f"{scene.width * scale}x{scene.height * scale}",
            "bytes": len(out), "layout_s": statistics.median(layouts), "render_s": statistics.median(totals),
            "py_peak_mb": py_peak / 2**20,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    repeat, results = fresh.cases(__doc__ or "", __file__, len(CASES), run_case)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {repeat}")
    print(f"{'case':46} {'ver':>3} {'ecl':>3} {'logo':>5} {'pixels':>12} {'bytes':>8} "
          f"{'layout s':>9} {'render s':>9} {'py MB':>6} {'RSS MB':>7}")
    for r in results:
        print(f"{r['case']:46} {r['version']:>3} {r['error']:>3} {r['logo']!s:>5} {r['pixels']:>12} "
              f"{r['bytes']:>8} {r['layout_s']:>9.3f} {r['render_s']:>9.3f} {r['py_peak_mb']:>6.1f} "
              f"{r['rss_peak_mb']:>7.1f}")

if __name__ == "__main__":
    main()
