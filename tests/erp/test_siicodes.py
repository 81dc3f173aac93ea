"""The Aduana code tables (erp/siicodes): they load, they are sound, and they agree with the XSD."""

import csv
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from dte.core.schemas import XSD_DIR
from erp import siicodes

XS = "{http://www.w3.org/2001/XMLSchema}"


def _element_types(name: str) -> list[etree._Element]:
    """Every simpleType restriction of the elements called `name` in DTE_v10.xsd."""
    tree = etree.parse(str(XSD_DIR / "DTE_v10.xsd"))
    found = tree.getroot().findall(f".//{XS}element[@name='{name}']")
    assert found, name
    return [el.find(f"{XS}simpleType/{XS}restriction") for el in found]


def _facet(restriction: etree._Element, facet: str) -> int:
    node = restriction.find(f"{XS}{facet}")
    assert node is not None, facet
    return int(node.get("value"))


@pytest.mark.parametrize("name", list(siicodes.TABLES))
def test_every_table_loads_with_unique_codes_and_names(name):
    rows = siicodes.table(name)
    assert rows
    for code, row in rows.items():
        assert code == row.code
        assert code.isdigit() and code == str(int(code)), code
        assert row.name.strip() == row.name and row.name, code
    # The file itself has no repeated code (the loader also refuses one) and a header line.
    text = resources.files("erp.siicodes").joinpath("data", f"{name}.csv").read_text("utf-8")
    lines = list(csv.reader(text.splitlines()))
    assert lines[0][:2] == ["code", "name"]
    codes = [line[0] for line in lines[1:]]
    assert len(codes) == len(set(codes)) == len(rows)


def test_every_table_has_its_source_named():
    sources = resources.files("erp.siicodes").joinpath("data", "SOURCES.md").read_text("utf-8")
    for name in siicodes.TABLES:
        assert f"`{name}.csv`" in sources


@pytest.mark.parametrize(
    ("table", "code", "name"),
    [
        ("paises", 997, "CHILE"),
        ("paises", 225, "U.S.A."),
        ("paises", "224", "ARGENTINA"),
        ("puertos", 906, "SAN ANTONIO"),
        ("puertos", 905, "VALPARAISO"),
        ("puertos", 134, "NEW YORK"),
        ("clausulas", 5, "FOB"),
        ("clausulas", 1, "CIF"),
        ("modalidades", 1, "A FIRME"),
        ("vias_transporte", 1, "MARITIMA, FLUVIAL Y LACUSTRE"),
        ("vias_transporte", 4, "AEREO"),
        ("unidades", 6, "KN"),
        ("bultos", 22, "CAJA DE CARTON"),
        ("formas_pago_exportacion", 21, "S/PAGO"),
        ("formas_pago_exportacion", "01", "COB1"),
        ("monedas", 13, "DOLAR USA"),
    ],
)
def test_known_anchors(table, code, name):
    assert siicodes.name_of(table, code) == name
    assert siicodes.is_valid(table, code)


def test_ports_know_which_are_chilean():
    assert siicodes.is_chilean_port(906) and siicodes.is_chilean_port("905")
    assert not siicodes.is_chilean_port(134)


def test_countries_carry_iso_codes_where_known():
    assert siicodes.table("paises")["225"].extra["iso2"] == "US"
    assert siicodes.table("paises")["997"].extra["iso2"] == "CL"


def test_currency_by_name_number_or_iso():
    usd = siicodes.currency("DOLAR USA")
    assert usd is siicodes.currency(13) is siicodes.currency("USD") is siicodes.currency("13")
    assert (usd.iso, usd.symbol, usd.decimals) == ("USD", "US$", 2)
    clp = siicodes.currency("PESO CL")
    assert (clp.code, clp.iso, clp.symbol, clp.decimals) == ("200", "CLP", "$", 0)
    assert siicodes.currency("EURO").symbol == "€"
    assert siicodes.currency("LIBRA EST").symbol == "£"
    assert siicodes.currency("PESETA").obsolete
    assert siicodes.currency("OTRAS MONEDAS").display_symbol == "OTRAS MONEDAS"


def test_unknown_codes_say_which_table_and_code():
    assert not siicodes.is_valid("paises", 1)
    with pytest.raises(KeyError, match=r"'1' no es un código de país .* «paises»"):
        siicodes.name_of("paises", 1)
    with pytest.raises(KeyError, match="no hay tabla de Aduana 'planetas'"):
        siicodes.table("planetas")
    with pytest.raises(KeyError, match="no es una moneda"):
        siicodes.currency("DOLAR MARCIANO")


def test_choices_are_sorted_by_name_ignoring_accents():
    labels = [label for _, label in siicodes.choices("paises")]
    assert labels == sorted(labels, key=siicodes._sort_key)
    assert ("5", "FOB — FRANCO A BORDO") in siicodes.choices("clausulas")
    money = dict(siicodes.choices("monedas"))
    assert money["DOLAR USA"] == "DOLAR USA (USD)"
    assert "PESETA" not in money
    assert "PESETA" in dict(siicodes.choices("monedas", include_obsolete=True))


def test_currency_names_are_exactly_the_xsd_enumeration():
    tree = etree.parse(str(XSD_DIR / "SiiTypes_v10.xsd"))
    tip_mon = tree.getroot().find(f"{XS}simpleType[@name='TipMonType']/{XS}restriction")
    enumerated = [e.get("value") for e in tip_mon.iter(f"{XS}enumeration")]
    names = [c.name for c in siicodes.currencies()]
    assert sorted(names) == sorted(enumerated)
    assert max(len(n) for n in names) <= _facet(tip_mon, "maxLength")
    # TpoMoneda (Totales and OtraMoneda of every export document) is typed by that enumeration.
    tree = etree.parse(str(XSD_DIR / "DTE_v10.xsd"))
    typed = tree.getroot().findall(f".//{XS}element[@name='TpoMoneda']")
    assert typed and {el.get("type") for el in typed} == {"SiiDte:TipMonType"}


@pytest.mark.parametrize(
    ("table", "fields"),
    [
        ("paises", ["CodPaisRecep", "CodPaisDestin"]),
        ("puertos", ["CodPtoEmbarque", "CodPtoDesemb"]),
        ("unidades", ["CodUnidMedTara", "CodUnidPesoBruto", "CodUnidPesoNeto"]),
        ("clausulas", ["CodClauVenta"]),
        ("modalidades", ["CodModVenta"]),
        ("vias_transporte", ["CodViaTransp"]),
        ("bultos", ["CodTpoBultos"]),
        ("formas_pago_exportacion", ["FmaPagExp"]),
    ],
)
def test_codes_fit_the_xsd_fields_that_carry_them(table, fields):
    """The XSD types these as positive integers of at most n digits (it enumerates none)."""
    codes = siicodes.table(table)
    for field in fields:
        for restriction in _element_types(field):
            assert restriction.get("base") == "xs:positiveInteger"
            assert restriction.find(f"{XS}enumeration") is None
            digits = _facet(restriction, "totalDigits")
            assert all(1 <= int(code) < 10**digits for code in codes), (field, digits)


def test_nationality_fits_its_string():
    for restriction in _element_types("Nacionalidad"):
        assert all(
            len(code) <= _facet(restriction, "maxLength") for code in siicodes.table("paises")
        )


def test_unmd_item_only_for_abbreviations_that_fit():
    limits = {_facet(r, "maxLength") for r in _element_types("UnmdItem")}
    assert limits == {siicodes.UNMD_ITEM_MAX_LENGTH}
    assert siicodes.unmd_item(6) == "KN"
    assert siicodes.unmd_item(12) is None  # U(JGO)


def test_pure_module_without_django():
    """dte/core imports it: loading it and a table must not bring Django in."""
    code = (
        "import sys, erp.siicodes as s; s.table('paises'); s.currency('EURO'); "
        "sys.exit(any(m.split('.')[0] in ('django', 'rest_framework') for m in sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
