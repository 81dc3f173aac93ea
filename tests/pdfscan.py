"""Read a printed document as a person with a scanner would: rasterise a page with pdftoppm
(Debian's poppler-utils) and read its barcodes with zxing-cpp."""

import re
import subprocess
import tempfile
from pathlib import Path

import zxingcpp
from PIL import Image


def ted_of(dte) -> bytes:
    """The TED exactly as it stands in the document's XML."""
    text = bytes(dte.xml)
    return re.search(rb'<TED version="1.0">.*?</TED>', text, re.S).group(0)


def scan(pdf: bytes, page: int = 1, dpi: int = 200) -> dict[str, list]:
    """Rasterise one page with pdftoppm, then read its barcodes with zxing-cpp."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "doc.pdf"
        source.write_bytes(pdf)
        command = ["pdftoppm", "-r", str(dpi), "-png", "-f", str(page), "-l", str(page)]
        subprocess.run([*command, "-singlefile", str(source), str(Path(tmp) / "page")], check=True)
        image = Image.open(Path(tmp) / "page.png")
        image.load()
    return {
        "pdf417": [
            bytes(b.bytes)
            for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.PDF417)
        ],
        "qr": [
            b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        ],
    }
