"""The two barcodes of the printed document as one-pixel-per-module bitmaps.

The PDF scales a bitmap up to its printed size without interpolation, so each module stays a
sharp rectangle while the embedded image is a few kilobytes: rasterising the barcodes at print
resolution and compressing them was most of a page's rendering time.

The PDF417 uses pdf417gen's compaction, row and codeword tables; only its Reed-Solomon step is
done here (the same arithmetic on one big integer instead of a Python loop per factor): at the
SII's error correction level 5 a TED has some 700 data words and that loop was the slowest part
of a page.
"""

import math

import pdf417gen.encoding as pdf417
import qrcode
from pdf417gen.compaction import compact
from pdf417gen.data import ERROR_CORRECTION_FACTORS
from PIL import Image

# DOMAIN.md §13: the TED's PDF417 uses error correction level 5; 13 columns keep it within the
# stamp's width rules at about 0.24 mm per module on a 70 mm wide stamp.
PDF417_COLUMNS = 13
PDF417_SECURITY_LEVEL = 5
PDF417_ROW_HEIGHT = 3  # modules: the row height to module width ratio
QUIET_ZONE = 2  # modules of white around the symbol
# Any of the eight masks is valid QR; choosing the "best" one scores all eight and tripled the
# time of the code. Mask 0 on a short URL reads fine on phones and with zxing.
QR_MASK = 0

_SLOT = 32
_WHITE_BLACK = bytes.maketrans(b"01", b"\xff\x00")


def _error_correction(words: list[int], level: int) -> list[int]:
    """PDF417 Reed-Solomon codewords over GF(929), as pdf417gen computes them.

    The check register lives in one integer, a 32-bit slot per codeword: shifting the register
    and subtracting t * g(x) is a shift, a mask and one multiplication per data word. Slots are
    reduced mod 929 only when read; a value passes through at most `count` slots, each adding
    less than 929², so 32 bits never overflow."""
    count = 2 ** (level + 1)
    factors = ERROR_CORRECTION_FACTORS[level]
    generator = sum((929 - factors[x]) << (_SLOT * x) for x in range(count))
    top = _SLOT * (count - 1)
    register_mask = (1 << (_SLOT * count)) - 1
    slot_mask = (1 << _SLOT) - 1
    register = 0
    for word in words:
        t = (word + (register >> top)) % 929
        register = ((register << _SLOT) & register_mask) + t * generator
    ec = [((register >> (_SLOT * x)) & slot_mask) % 929 for x in range(count)]
    return [929 - x if x else 0 for x in reversed(ec)]


def pdf417_codes(data: bytes, columns: int = PDF417_COLUMNS, level: int = PDF417_SECURITY_LEVEL):
    """The rows of low-level codewords, as `pdf417gen.encode(data, columns, level)` returns."""
    data_words = list(compact(data))
    ec_count = 2 ** (level + 1)
    padding = pdf417.get_padding(len(data_words), ec_count, columns)
    length_descriptor = len(data_words) + len(padding) + 1
    rows_needed = math.ceil((length_descriptor + ec_count) / columns)
    pdf417.validate_barcode_size(length_descriptor, rows_needed)
    words = [length_descriptor, *data_words, *padding]
    words += _error_correction(words, level)
    rows = [words[i : i + columns] for i in range(0, len(words), columns)]
    return list(pdf417.encode_rows(rows, columns, level))


def _bitmap(rows: list[str], quiet_x: int, quiet_y: int) -> Image.Image:
    """An 8-bit greyscale image, one pixel per module, from rows of "0"/"1" (1 = black)."""
    width = len(rows[0]) + 2 * quiet_x
    blank = b"\xff" * width * quiet_y
    margin = "0" * quiet_x
    body = b"".join((margin + row + margin).encode().translate(_WHITE_BLACK) for row in rows)
    data = blank + body + blank
    return Image.frombytes("L", (width, len(data) // width), data)


def pdf417_bitmap(data: bytes) -> tuple[Image.Image, float]:
    """The PDF417 of `data` and its printed height-to-width ratio (rows are 3 modules tall)."""
    rows = ["".join(format(code, "b") for code in row) for row in pdf417_codes(data)]
    # The quiet zone: two modules on the sides, one row (three modules) above and below.
    image = _bitmap(rows, quiet_x=QUIET_ZONE, quiet_y=1)
    modules_wide = len(rows[0]) + 2 * QUIET_ZONE
    modules_high = (len(rows) + 2) * PDF417_ROW_HEIGHT
    return image, modules_high / modules_wide


def qr_bitmap(text: str) -> Image.Image:
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=QR_MASK
    )
    qr.add_data(text)
    qr.make(fit=True)
    rows = ["".join("1" if cell else "0" for cell in row) for row in qr.get_matrix()]
    return _bitmap(rows, quiet_x=QUIET_ZONE, quiet_y=QUIET_ZONE)
