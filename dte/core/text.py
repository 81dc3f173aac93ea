"""Text as the SII accepts it: ISO-8859-1 only, no control characters, cut to the XSD's lengths.

Everything a person typed passes through `clean` before it reaches a DTE, so that the bytes we
sign are the bytes we send (DOMAIN.md §11).
"""

import unicodedata

_REPLACEMENTS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u20ac": "EUR",
        "\u2122": "TM",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\t": " ",
        "\r": "",
    }
)


def _latin1_char(char: str) -> str:
    try:
        char.encode("iso-8859-1")
    except UnicodeEncodeError:
        decomposed = unicodedata.normalize("NFKD", char)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        try:
            base.encode("iso-8859-1")
        except UnicodeEncodeError:
            return "?"
        return base
    return char


def _is_plain(text: str) -> bool:
    """Printable Latin-1 already: nothing to replace (the common case, checked in C)."""
    if not text.isprintable():
        return False
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return not any(c in text for c in "\u00a0\u2009\u202f")


def clean(text: str | None, max_length: int | None = None, *, multiline: bool = False) -> str:
    """Latin-1 text without control characters, trimmed and cut to `max_length` characters."""
    if not text:
        return ""
    if _is_plain(text):
        result = " ".join(text.split())
        return result[:max_length].rstrip() if max_length is not None else result
    text = unicodedata.normalize("NFC", text).translate(_REPLACEMENTS)
    if not multiline:
        text = " ".join(text.split())
    chars = []
    for char in text:
        if char == "\n" and multiline:
            chars.append(char)
        elif unicodedata.category(char)[0] == "C":
            continue
        else:
            chars.append(_latin1_char(char))
    result = "".join(chars).strip()
    if max_length is not None:
        result = result[:max_length].rstrip()
    return result


def escape(text: str) -> str:
    """Escape text content exactly as inclusive C14N writes it (so signed bytes match)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
