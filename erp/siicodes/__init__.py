"""The Aduana code tables that export documents (110, 111, 112) carry. Pure: no Django.

DTE_v10.xsd types these fields as bare numbers ("según tabla … de Aduana"), except `TpoMoneda`,
which SiiTypes_v10.xsd enumerates by currency *name* (`TipMonType`: "DOLAR USA", "PESO CL"…).
The tables are data files in `data/` (UTF-8 CSV, one per table, header line first); where each
comes from, and where the sources disagree, is in `data/SOURCES.md`.

    table("paises")["997"].name        -> "CHILE"
    name_of("clausulas", 5)            -> "FOB"
    is_valid("puertos", "906")         -> True   (San Antonio)
    currency("DOLAR USA").symbol       -> "US$"

Codes are kept as decimal strings without leading zeros ("5", not "05"); every function accepts
an int or a string ("05" and 5 find the same row).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Final

# Table name -> what the XSD field(s) using it are, for error messages and the docs.
TABLES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "paises": "país (CodPaisRecep, CodPaisDestin, Nacionalidad)",
        "puertos": "puerto (CodPtoEmbarque, CodPtoDesemb)",
        "monedas": "moneda (TpoMoneda)",
        "unidades": "unidad de medida (CodUnidMedTara, CodUnidPesoBruto, CodUnidPesoNeto)",
        "clausulas": "cláusula de venta (CodClauVenta)",
        "modalidades": "modalidad de venta (CodModVenta)",
        "vias_transporte": "vía de transporte (CodViaTransp)",
        "bultos": "tipo de bulto (CodTpoBultos)",
        "formas_pago_exportacion": "forma de pago de exportación (FmaPagExp)",
    }
)

# DTE_v10.xsd: UnmdItem is a string of at most 4 characters.
UNMD_ITEM_MAX_LENGTH: Final = 4


@dataclass(frozen=True, slots=True)
class Code:
    """One row of a table: its code, its name (the Aduana's glosa) and any further columns."""

    code: str
    name: str
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def label(self) -> str:
        """What a select box shows: the name, and the description where the table has one."""
        description = self.extra.get("description", "")
        return f"{self.name} — {description}" if description else self.name


@dataclass(frozen=True, slots=True)
class Currency:
    """A currency of `TpoMoneda`: the XSD's name, the Aduana's number and how to print amounts."""

    code: str  # Aduana number ("13")
    name: str  # what TpoMoneda carries ("DOLAR USA")
    iso: str  # ISO 4217 ("USD"); "" for OTRAS MONEDAS
    symbol: str  # printed before amounts ("US$", "€", "$" for CLP); "" when none is known
    decimals: int  # decimals its amounts use (ISO 4217 minor unit; 0 for CLP)
    obsolete: bool  # replaced by the euro or the dollar: still in the XSD, not offered

    @property
    def display_symbol(self) -> str:
        """The symbol, or the name when there is none (OTRAS MONEDAS)."""
        return self.symbol or self.name


def normalize_code(code: str | int) -> str:
    """`5`, `"5"` and `"05"` -> `"5"`; anything that is not a non-negative integer stays as is."""
    if isinstance(code, bool):
        raise TypeError("a code is a number or a string of digits, not a bool")
    if isinstance(code, int):
        return str(code)
    text = code.strip()
    return str(int(text)) if text.isascii() and text.isdigit() else text


def table(name: str) -> Mapping[str, Code]:
    """The rows of a table by code, in the file's order (ascending code)."""
    return _load(_check_table(name))


def get(table_name: str, code: str | int) -> Code:
    """The row for a code; KeyError naming the table and the code when there is none."""
    rows = table(table_name)
    key = normalize_code(code)
    try:
        return rows[key]
    except KeyError:
        raise KeyError(
            f"{key!r} no es un código de {TABLES[table_name]} de la tabla de Aduana "
            f"«{table_name}» ({len(rows)} códigos)"
        ) from None


def name_of(table_name: str, code: str | int) -> str:
    return get(table_name, code).name


def is_valid(table_name: str, code: str | int) -> bool:
    return normalize_code(code) in table(table_name)


def choices(table_name: str, *, include_obsolete: bool = False) -> list[tuple[str, str]]:
    """(code, label) pairs sorted by label, accents and case ignored, for a select box.

    For "monedas" the value is the XSD name (what `TpoMoneda` carries), not the Aduana number,
    and currencies replaced by the euro or the dollar are left out unless asked for.
    """
    if table_name == "monedas":
        pairs = [
            (c.name, f"{c.name} ({c.iso})" if c.iso else c.name)
            for c in currencies()
            if include_obsolete or not c.obsolete
        ]
    else:
        pairs = [(row.code, row.label) for row in table(table_name).values()]
    return sorted(pairs, key=lambda pair: (_sort_key(pair[1]), pair[0]))


# --- Currencies -------------------------------------------------------------------------------


def currencies() -> tuple[Currency, ...]:
    """Every currency of `TipMonType`, in the order of their Aduana numbers."""
    return _currencies()[0]


def currency(value: str | int) -> Currency:
    """By XSD name ("DOLAR USA"), Aduana number (13, "13") or ISO 4217 code ("USD")."""
    by_key = _currencies()[1]
    key = normalize_code(value) if isinstance(value, int) else value.strip()
    found = by_key.get(key) or by_key.get(normalize_code(key)) or by_key.get(key.upper())
    if found is None:
        raise KeyError(
            f"{value!r} no es una moneda de la tabla de Aduana (TpoMoneda): use el nombre del "
            f"XSD (p. ej. 'DOLAR USA'), el código de Aduana (13) o el código ISO (USD)"
        )
    return found


# --- Ports and units ---------------------------------------------------------------------------


def is_chilean_port(code: str | int) -> bool:
    """A Chilean port, border pass or airport (where an export is shipped from)."""
    return get("puertos", code).extra["chilean"] == "1"


def unmd_item(code: str | int) -> str | None:
    """The unit's abbreviation for `UnmdItem` (at most 4 characters), or None if it is longer."""
    name = get("unidades", code).name
    return name if len(name) <= UNMD_ITEM_MAX_LENGTH else None


# --- Loading -----------------------------------------------------------------------------------


def _check_table(name: str) -> str:
    if name not in TABLES:
        raise KeyError(f"no hay tabla de Aduana {name!r}; las tablas son: {', '.join(TABLES)}")
    return name


def _sort_key(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@lru_cache(maxsize=len(TABLES))
def _load(name: str) -> Mapping[str, Code]:
    text = resources.files(__package__ or "erp.siicodes").joinpath("data", f"{name}.csv")
    reader = csv.DictReader(io.StringIO(text.read_text(encoding="utf-8")))
    rows: dict[str, Code] = {}
    for line in reader:
        code = normalize_code(line.pop("code"))
        if code in rows:
            raise ValueError(f"{name}.csv: code {code} appears twice")
        label = line.pop("name")
        rows[code] = Code(code, label, MappingProxyType(dict(line)))
    return MappingProxyType(rows)


@lru_cache(maxsize=1)
def _currencies() -> tuple[tuple[Currency, ...], Mapping[str, Currency]]:
    items = tuple(
        Currency(
            code=row.code,
            name=row.name,
            iso=row.extra["iso"],
            symbol=row.extra["symbol"],
            decimals=int(row.extra["decimals"]),
            obsolete=row.extra["obsolete"] == "1",
        )
        for row in table("monedas").values()
    )
    by_key: dict[str, Currency] = {}
    for item in items:
        for key in (item.name, item.code, item.iso):
            if key:
                by_key.setdefault(key, item)
    return items, MappingProxyType(by_key)
