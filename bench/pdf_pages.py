"""Pages per second of the printed representation, letter and 80 mm thermal.

    python bench/pdf_pages.py [--n 200]

Renders the golden factura (tests/data/golden) N times in each layout, from its signed XML
(reading the XML, PDF417 and QR included), and prints pages per second; the last line is JSON.
"""

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dte.pdf.data import read_dte  # noqa: E402
from dte.pdf.render import RenderOptions, render_pdf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    results = {}
    for fmt, name in (
        ("letter", "DTE--76086428-5--33--7.xml"),
        ("thermal", "DTE--76086428-5--39--7.xml"),
    ):
        xml = (ROOT / "tests" / "data" / "golden" / name).read_bytes()
        options = RenderOptions(
            format=fmt,
            resolution_date=date(2014, 8, 22),
            resolution_number=80,
            verify_url="https://facturas.example/v/abcdefghijklmnopqrstuvwx/",
        )
        render_pdf(read_dte(xml), options)  # warm-up
        start = time.perf_counter()
        for _ in range(args.n):
            render_pdf(read_dte(xml), options)
        elapsed = time.perf_counter() - start
        results[fmt] = args.n / elapsed
        print(f"{fmt:8s} {args.n / elapsed:6.1f} pages/s  ({1000 * elapsed / args.n:.1f} ms/page)")
    print(
        json.dumps(
            {
                "letter_pages_per_s": round(results["letter"], 1),
                "thermal_pages_per_s": round(results["thermal"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
