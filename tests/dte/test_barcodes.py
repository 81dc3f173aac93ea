"""The barcode bitmaps: our Reed-Solomon step must give exactly pdf417gen's codewords, and the
bitmaps must carry one pixel per module with the quiet zone around."""

import random

import pdf417gen
import pytest

from dte.pdf.barcodes import PDF417_ROW_HEIGHT, QUIET_ZONE, pdf417_bitmap, pdf417_codes, qr_bitmap


@pytest.mark.parametrize("size", [40, 180, 420])
@pytest.mark.parametrize("level", range(9))
def test_pdf417_codewords_match_the_library(size, level):
    data = random.Random(size * 10 + level).randbytes(size)
    try:
        expected = pdf417gen.encode(data, columns=20, security_level=level, encoding="latin-1")
    except ValueError:  # too big for this level: ours must refuse it too
        with pytest.raises(ValueError):
            pdf417_codes(data, 20, level)
        return
    assert pdf417_codes(data, 20, level) == expected


def test_pdf417_bitmap_is_one_pixel_per_module():
    ted = b'<TED version="1.0"><DD><RE>76086428-5</RE><TD>33</TD><F>7</F></DD></TED>'
    codes = pdf417gen.encode(ted, columns=13, security_level=5, encoding="latin-1")
    image, ratio = pdf417_bitmap(ted)
    modules = len(codes[0]) * 17 + 1
    assert image.size == (modules + 2 * QUIET_ZONE, len(codes) + 2)
    assert ratio == pytest.approx((len(codes) + 2) * PDF417_ROW_HEIGHT / (modules + 4))
    # Every row starts with the start pattern (8 black modules) after the quiet zone.
    row = [image.getpixel((x, 1)) for x in range(image.size[0])]
    assert row[:QUIET_ZONE] == [255] * QUIET_ZONE
    assert row[QUIET_ZONE : QUIET_ZONE + 8] == [0] * 8
    assert {image.getpixel((x, 0)) for x in range(image.size[0])} == {255}


def test_qr_bitmap_has_a_quiet_zone_and_finder_patterns():
    image = qr_bitmap("https://facturas.example/v/abc/")
    width, height = image.size
    assert width == height
    assert [image.getpixel((QUIET_ZONE + i, QUIET_ZONE)) for i in range(7)] == [0] * 7
    assert image.getpixel((0, 0)) == 255
