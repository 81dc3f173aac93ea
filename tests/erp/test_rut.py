import pytest

from erp.rut import InvalidRut, check_digit, format_rut, normalize_rut


@pytest.mark.parametrize(
    ("body", "dv"),
    [(60910000, "1"), (76369187, "K"), (77879240, "0"), (76086428, "5"), (60803000, "K")],
)
def test_check_digit_matches_domain_examples(body, dv):
    assert check_digit(body) == dv


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("76.086.428-5", "76086428-5"),
        ("76086428-5", "76086428-5"),
        ("760864285", "76086428-5"),
        (" 76.086.428 - 5 ", "76086428-5"),
        ("76.369.187-k", "76369187-K"),
        ("76369187k", "76369187-K"),
        ("1-9", "1-9"),
        ("66.666.666-6", "66666666-6"),
    ],
)
def test_normalize_accepts_what_people_type(typed, canonical):
    assert normalize_rut(typed) == canonical


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("76086428-6", "dígito verificador"),
        ("76.086.428-K", "dígito verificador"),
        ("", "formato"),
        ("abc", "formato"),
        ("76-086-428-5", "formato"),
        ("123456789-0", "formato"),  # more than 8 body digits: over the XSD's 10 characters
        ("0-0", "formato"),
        ("76086428-", "formato"),
    ],
)
def test_normalize_rejects_with_a_reason(bad, reason):
    with pytest.raises(InvalidRut, match=reason):
        normalize_rut(bad)


def test_normalize_rejects_non_text():
    with pytest.raises(InvalidRut):
        normalize_rut(76086428)  # type: ignore[arg-type]


def test_format_for_people():
    assert format_rut("76086428-5") == "76.086.428-5"
    assert format_rut("1-9") == "1-9"
