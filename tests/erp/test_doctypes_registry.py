"""One registry says what each SII document type is (erp.doctypes.REGISTRY): no other module
keeps its own list of type codes, and the registry agrees with the SII's schemas."""

import ast
from pathlib import Path

import pytest
from lxml import etree

from erp.doctypes import (
    PURCHASE_TYPES,
    REGISTRY,
    Envio,
    Family,
    SalesBox,
    TipoDte,
    codes,
    doc_type,
    type_name,
)

ROOT = Path(__file__).resolve().parents[2]
APPS = ("erp", "dte", "f29", "ai", "ops")
XSD = ROOT.parent / "shared" / "sii" / "xsd"
KNOWN = set(REGISTRY)


def _literal_type_lists(path: Path) -> list[str]:
    """Tuple, list and set literals of two or more integers that are all document type codes."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
            if len(numbers) >= 2 and len(numbers) == len(node.elts) and set(numbers) <= KNOWN:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {sorted(set(numbers))}")
    return found


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts or path == ROOT / "erp" / "doctypes.py":
                continue
            yield path


def test_no_module_keeps_its_own_list_of_type_codes():
    lists = [hit for path in _modules() for hit in _literal_type_lists(path)]
    assert lists == [], "read erp.doctypes.REGISTRY instead:\n" + "\n".join(lists)


def test_the_scan_would_see_a_list():
    sample = ROOT / "var" / "registry_scan_sample.py"
    sample.parent.mkdir(exist_ok=True)
    sample.write_text("CEDIBLE = frozenset({33, 34, 52})\nPORTS = (80, 443)\n")
    try:
        assert _literal_type_lists(sample) == ["var/registry_scan_sample.py:1 [33, 34, 52]"]
    finally:
        sample.unlink()


def _xsd_enumeration(type_name_: str) -> set[int]:
    tree = etree.parse(str(XSD / "SiiTypes_v10.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    node = tree.find(f".//xs:simpleType[@name='{type_name_}']", ns)
    return {int(e.get("value")) for e in node.iterfind(".//xs:enumeration", ns)}


@pytest.mark.parametrize(
    ("root", "xsd_type"),
    [("Documento", "DTEType"), ("Liquidacion", "LIQType"), ("Exportaciones", "EXPType")],
)
def test_each_dte_root_holds_exactly_the_types_its_schema_admits(root, xsd_type):
    sent = codes(lambda d: d.envio is Envio.DTE and d.root == root)
    assert sent == _xsd_enumeration(xsd_type)


def test_the_types_an_envio_dte_carries_are_the_schemas_doctype():
    # DOCType (SiiTypes_v10.xsd): every type an EnvioDTE may carry.
    assert codes(lambda d: d.envio is Envio.DTE) == _xsd_enumeration("DOCType")


def test_the_types_a_cesion_carries_are_printed_cedible():
    # DTEFacturasType (SiiTypes_v10.xsd): the documents a cesión (AEC) may carry. A factura de
    # compra (46) is among them, but its emisor is the buyer, who is owed nothing to cede: no
    # copia cedible is printed for it.
    assert _xsd_enumeration("DTEFacturasType") - {46} <= codes(lambda d: d.cedible)


def test_the_registry_answers_what_the_apps_ask():
    assert codes(lambda d: d.envio is Envio.BOLETA) == {39, 41}
    assert codes(lambda d: d.caf_expires) == {33, 43, 46, 56, 61}
    assert codes(lambda d: d.cedible) == {33, 34, 43, 46, 52}
    assert codes(lambda d: d.rcv_acceptance) == {33, 34, 43}
    assert codes(lambda d: not d.rcv_detail) == {35, 38, 39, 41, 50, 52}
    assert codes(lambda d: d.receiver_details) >= {33, 34, 46, 52, 56, 61}
    assert codes(lambda d: SalesBox.EXPORTACIONES in d.sales_boxes) == {110}
    assert list(PURCHASE_TYPES) == [30, 32, 33, 34, 45, 46, 55, 56, 60, 61, 914]
    assert all(REGISTRY[int(t)].electronic for t in TipoDte)
    assert TipoDte.NOTA_CREDITO.spec.family is Family.NOTA_CREDITO
    assert TipoDte.FACTURA.label == "Factura electrónica" and TipoDte.BOLETA.max_lines == 1000


def test_unknown_codes():
    with pytest.raises(KeyError, match="Tipo de documento desconocido: 999"):
        doc_type(999)
    assert type_name(801) == "Tipo 801" and type_name(33) == "Factura electrónica"


def test_the_readme_lists_every_type_issued_here():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for tipo in TipoDte:
        assert f"| {int(tipo)} | {tipo.label} |" in readme, tipo
