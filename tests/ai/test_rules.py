"""ai.rules: each rule fires, stays quiet just past its threshold, and survives missing data."""

import dataclasses
import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from ai import rules
from ai.rules import (
    RULES,
    CertificateFacts,
    DocumentFacts,
    Finding,
    FolioStock,
    LineFacts,
    PastDocument,
    ReferenceFacts,
    review_document,
    review_period,
    review_resources,
)

TODAY = date(2026, 10, 15)
FECHA = date(2026, 10, 10)


def line(**overrides):
    values = {
        "name": "Asesoría contable",
        "quantity": Decimal(2),
        "unit_price": Decimal(500_000),
        "discount_pct": Decimal(0),
        "is_exempt": False,
        "amount": 1_000_000,
        "product_code": "ASE-01",
        "product_is_exempt": False,
    }
    values.update(overrides)
    return LineFacts(**values)


def doc(**overrides):
    """A clean factura 33: no rule fires on it without history."""
    values = {
        "id": 100,
        "tipo": 33,
        "folio": 12,
        "fecha": FECHA,
        "partner_id": 7,
        "partner_name": "Andina Ltda.",
        "partner_has_giro": True,
        "partner_has_address": True,
        "monto_neto": 1_000_000,
        "monto_exento": 0,
        "iva": 190_000,
        "monto_total": 1_190_000,
        "lines": (line(),),
        "references": (),
    }
    values.update(overrides)
    return DocumentFacts(**values)


def past(id, total, *, tipo=33, fecha=FECHA, folio=None):
    return PastDocument(
        id=id, tipo=tipo, folio=folio if folio is not None else id, fecha=fecha, monto_total=total
    )


def codes(findings):
    return [finding.code for finding in findings]


def only(findings, code):
    found = [finding for finding in findings if finding.code == code]
    assert len(found) == 1, codes(findings)
    return found[0]


def review(document, history=()):
    return review_document(document, history, today=TODAY)


def credit_note(total=500_000, **overrides):
    values = {
        "tipo": 61,
        "folio": 3,
        "monto_neto": 0,
        "monto_exento": total,
        "iva": 0,
        "monto_total": total,
        "lines": (),
        "references": (ReferenceFacts("33", "12", 3, 100, 1_190_000),),
    }
    values.update(overrides)
    return doc(**values)


# --- The clean document and the API -----------------------------------------------------------


def test_clean_document_has_no_findings():
    assert review(doc()) == []


def test_rules_document_every_code():
    expected = {
        "duplicate_document",
        "amount_outlier",
        "exempt_line_on_taxed_product",
        "taxed_line_on_exempt_product",
        "credit_note_exceeds_reference",
        "credit_note_without_reference",
        "factura_partner_incomplete",
        "line_amount_mismatch",
        "total_mismatch",
        "vat_swing",
        "folios_running_out",
        "certificate_expiring",
    }
    assert set(RULES) == expected
    for code, info in RULES.items():
        assert info.code == code
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code)
        assert info.severity in ("info", "warning", "error")
        assert info.title_es and info.description_es.endswith(".")
    ordered = [code for group, _ in rules.DOCUMENT_RULE_ORDER for code in group]
    assert len(ordered) == len(set(ordered))
    assert set(ordered) == expected - {"vat_swing", "folios_running_out", "certificate_expiring"}


def test_rules_mapping_is_read_only():
    with pytest.raises(TypeError):
        RULES["x"] = RULES["vat_swing"]  # type: ignore[index]


def test_finding_as_dict_is_json_and_evidence_read_only():
    finding = Finding("vat_swing", "warning", "Mensaje.", {"a": [1, {"b": "2026-10-01"}]})
    assert finding.as_dict() == {
        "code": "vat_swing",
        "severity": "warning",
        "message": "Mensaje.",
        "evidence": {"a": [1, {"b": "2026-10-01"}]},
    }
    with pytest.raises(TypeError):
        finding.evidence["a"] = 2  # type: ignore[index]
    assert hash(finding) == hash(Finding("vat_swing", "warning", "Mensaje.", {}))


def test_everything_at_once_in_a_fixed_order_and_json_serialisable():
    bad = doc(
        tipo=61,
        partner_has_giro=False,
        monto_total=1,
        lines=(line(amount=5, is_exempt=True),),
        references=(),
    )
    findings = review(bad, [past(1, 1, tipo=61)])
    assert codes(findings) == [
        "total_mismatch",
        "line_amount_mismatch",
        "credit_note_without_reference",
        "factura_partner_incomplete",
        "exempt_line_on_taxed_product",
        "duplicate_document",
    ]
    for finding in findings:
        json.dumps(finding.as_dict())


# --- duplicate_document -----------------------------------------------------------------------


def test_duplicate_fires_with_both_documents_in_evidence():
    other = past(90, 1_190_000, folio=11, fecha=date(2026, 10, 3))
    finding = only(review(doc(), [other]), "duplicate_document")
    assert finding.severity == "warning"
    assert finding.message == (
        "Posible documento duplicado: la factura N° 11 del 03-10-2026 a Andina Ltda. tiene el "
        "mismo total ($ 1.190.000; este documento: $ 1.190.000)."
    )
    assert finding.evidence["document_id"] == 100
    assert finding.evidence["folio"] == 12
    assert finding.evidence["fecha"] == "2026-10-10"
    assert finding.evidence["monto_total"] == 1_190_000
    assert finding.evidence["other_id"] == 90
    assert finding.evidence["other_folio"] == 11
    assert finding.evidence["other_total"] == 1_190_000
    assert finding.evidence["other_fecha"] == "2026-10-03"
    assert finding.evidence["days_apart"] == 7


@pytest.mark.parametrize(
    ("days", "other_total", "fires"),
    [
        (7, 1_190_000, True),
        (-7, 1_190_000, True),
        (8, 1_190_000, False),
        (-8, 1_190_000, False),
        (0, 1_190_000 + 11_900, True),  # exactly 1 %
        (0, 1_190_000 - 11_900, True),
        (0, 1_190_000 + 12_100, False),  # just over 1 % of the larger total
        (0, 1_190_000 - 12_000, False),
    ],
)
def test_duplicate_thresholds(days, other_total, fires):
    other = past(90, other_total, fecha=FECHA + timedelta(days=days))
    assert ("duplicate_document" in codes(review(doc(), [other]))) is fires


@pytest.mark.parametrize(("other_total", "fires"), [(51_000, True), (51_001, False)])
def test_duplicate_small_amounts_use_the_peso_tolerance(other_total, fires):
    small = doc(monto_neto=50_000, iva=0, monto_exento=0, monto_total=50_000, lines=())
    assert ("duplicate_document" in codes(review(small, [past(90, other_total)]))) is fires


def test_duplicate_message_says_similar_and_handles_drafts():
    finding = only(review(doc(), [past(90, 1_189_500, folio=0)]), "duplicate_document")
    assert "total similar ($ 1.189.500; este documento: $ 1.190.000)" in finding.message
    draft = PastDocument(id=91, tipo=34, folio=None, fecha=FECHA, monto_total=1_190_000)
    finding = only(review(doc(), [draft]), "duplicate_document")
    assert "la factura exenta sin folio (id 91)" in finding.message


def test_duplicate_families():
    # Facturas 33, 34 and 46 together; boletas 39 and 41 together.
    assert "duplicate_document" in codes(review(doc(), [past(90, 1_190_000, tipo=46)]))
    boleta = doc(tipo=39, partner_has_giro=False)
    assert "duplicate_document" in codes(review(boleta, [past(90, 1_190_000, tipo=41)]))
    # Never across families: notas vs facturas, guías vs facturas, boletas vs facturas.
    for tipo in (39, 52, 56, 61):
        assert "duplicate_document" not in codes(review(doc(), [past(90, 1_190_000, tipo=tipo)]))
    nc = credit_note(total=1_190_000)
    assert "duplicate_document" not in codes(review(nc, [past(90, 1_190_000, tipo=33)]))
    assert "duplicate_document" not in codes(review(nc, [past(90, 1_190_000, tipo=56)]))
    assert "duplicate_document" in codes(review(nc, [past(90, 1_190_000, tipo=61)]))


def test_duplicate_ignores_itself_zero_totals_and_anonymous_partners():
    assert review(doc(), [past(100, 1_190_000)]) == []
    guia = doc(tipo=52, monto_neto=0, iva=0, monto_total=0, lines=())
    assert review(guia, [past(90, 0, tipo=52)]) == []
    anonymous = doc(tipo=39, partner_id=None, partner_name="")
    assert review(anonymous, [past(90, 1_190_000, tipo=39)]) == []


def test_duplicate_one_finding_per_candidate_nearest_first():
    history = [past(90, 1_190_000, fecha=FECHA - timedelta(days=5)), past(91, 1_190_500)]
    findings = review(doc(), history)
    assert [f.evidence["other_id"] for f in findings] == [91, 90]


# --- amount_outlier ---------------------------------------------------------------------------


def spread_history(n=8, base=1_000_000, step=10_000, start_id=1):
    """Totals base, base+step, ... dated far enough from FECHA not to be duplicates."""
    return [
        past(start_id + i, base + i * step, fecha=FECHA - timedelta(days=30 + i)) for i in range(n)
    ]


def outlier_doc(total):
    return doc(monto_neto=total, iva=0, monto_total=total, lines=())


def test_outlier_fires_with_median_mad_z_and_n():
    # History 1.000.000 .. 1.070.000: median 1.035.000, MAD 20.000.
    finding = only(review(outlier_doc(5_000_000), spread_history()), "amount_outlier")
    assert finding.severity == "warning"
    assert finding.evidence["median"] == 1_035_000
    assert finding.evidence["mad"] == 20_000
    assert finding.evidence["z"] == "133.72"
    assert finding.evidence["n"] == 8
    assert finding.message == (
        "Monto inusual: el total de la factura N° 12 ($ 5.000.000) es mucho mayor que lo "
        "habitual para Andina Ltda. (mediana $ 1.035.000 en 8 facturas anteriores)."
    )


def test_outlier_z_threshold_edge():
    # z = 0.6745 * d / 20.000 > 5  <=>  d > 148.257,97...; both d > $ 50.000.
    history = spread_history()
    assert "amount_outlier" not in codes(review(outlier_doc(1_035_000 + 148_257), history))
    assert "amount_outlier" in codes(review(outlier_doc(1_035_000 + 148_258), history))
    assert "amount_outlier" not in codes(review(outlier_doc(1_035_000 - 148_257), history))
    low = only(review(outlier_doc(1_035_000 - 148_258), history), "amount_outlier")
    assert "mucho menor" in low.message
    assert low.evidence["z"].startswith("-")


def test_outlier_needs_eight_documents_of_the_same_family():
    assert review(outlier_doc(5_000_000), spread_history(n=7)) == []
    other_family = [dataclasses.replace(p, tipo=39) for p in spread_history()]
    assert review(outlier_doc(5_000_000), other_family) == []
    with_itself = [*spread_history(n=7), past(100, 1_000_000, fecha=FECHA - timedelta(days=60))]
    assert review(outlier_doc(5_000_000), with_itself) == []
    mixed_facturas = [dataclasses.replace(p, tipo=34) for p in spread_history()]
    assert "amount_outlier" in codes(review(outlier_doc(5_000_000), mixed_facturas))


def test_outlier_needs_a_peso_difference_too():
    # Tiny amounts: z is huge but the total is only $ 50.000 away from the median.
    history = spread_history(base=1_000, step=10)
    assert review(outlier_doc(1_035 + 50_000), history) == []
    assert "amount_outlier" in codes(review(outlier_doc(1_035 + 50_001), history))


def test_outlier_with_zero_mad_uses_the_ratio():
    history = spread_history(step=0, base=100_000)
    assert review(outlier_doc(1_000_000), history) == []  # exactly 10 times
    finding = only(review(outlier_doc(1_000_001), history), "amount_outlier")
    assert finding.evidence["mad"] == 0
    assert finding.evidence["z"] is None
    assert finding.evidence["ratio"] == "10.00"
    # Below a tenth: needs the $ 50.000 floor too, so a bigger median.
    big = spread_history(step=0, base=1_000_000)
    assert review(outlier_doc(100_000), big) == []  # exactly a tenth
    assert "amount_outlier" in codes(review(outlier_doc(99_999), big))
    # A median of zero gives no ratio: no finding, no crash.
    zeros = spread_history(step=0, base=0)
    assert "amount_outlier" not in codes(review(outlier_doc(1_000_000), zeros))


def test_outlier_without_partner_is_skipped():
    anonymous = dataclasses.replace(outlier_doc(5_000_000), partner_id=None)
    assert review(anonymous, spread_history()) == []


# --- exempt_line_on_taxed_product / taxed_line_on_exempt_product ------------------------------


def test_exempt_line_on_taxed_product():
    lines = (line(), line(is_exempt=True, product_code="ASE-02", amount=1_000_000))
    findings = review(doc(lines=lines))
    finding = only(findings, "exempt_line_on_taxed_product")
    assert finding.severity == "warning"
    assert finding.evidence["line_index"] == 1
    assert finding.evidence["line_number"] == 2
    assert finding.evidence["product_code"] == "ASE-02"
    assert finding.message.startswith(
        "La línea 2 («Asesoría contable», producto ASE-02) está marcada como exenta"
    )
    assert "taxed_line_on_exempt_product" not in codes(findings)


def test_taxed_line_on_exempt_product():
    findings = review(doc(lines=(line(product_is_exempt=True),)))
    finding = only(findings, "taxed_line_on_exempt_product")
    assert finding.evidence["line_index"] == 0
    assert finding.evidence["product_code"] == "ASE-01"
    assert "exempt_line_on_taxed_product" not in codes(findings)


def test_exemption_rules_stay_quiet_when_consistent_or_free_text():
    consistent = (line(is_exempt=True, product_is_exempt=True), line())
    free_text = (
        line(is_exempt=True, product_is_exempt=None, product_code=None),
        line(product_is_exempt=None, product_code=None),
    )
    assert review(doc(lines=consistent)) == []
    assert review(doc(lines=free_text)) == []


# --- credit_note_without_reference / credit_note_exceeds_reference ----------------------------


@pytest.mark.parametrize("tipo", [56, 61])
def test_note_without_reference(tipo):
    finding = only(review(credit_note(tipo=tipo, references=())), "credit_note_without_reference")
    assert finding.severity == "error"
    assert finding.evidence["tipo"] == tipo
    article = "La nota de crédito" if tipo == 61 else "La nota de débito"
    assert finding.message.startswith(f"{article} N° 3 no indica el documento")


def test_facturas_need_no_reference():
    assert "credit_note_without_reference" not in codes(review(doc(references=())))


def test_credit_note_exceeds_reference():
    ref = ReferenceFacts("33", "12", 3, 100, 1_000_000, already_credited=500_000)
    finding = only(
        review(credit_note(total=600_000, references=(ref,))), "credit_note_exceeds_reference"
    )
    assert finding.severity == "error"
    assert finding.message == (
        "La nota de crédito N° 3 por $ 600.000, más $ 500.000 ya acreditados en otras notas de "
        "crédito, supera el total de la factura N° 12 ($ 1.000.000) en $ 100.000."
    )
    assert finding.evidence["monto_total"] == 600_000
    assert finding.evidence["already_credited"] == 500_000
    assert finding.evidence["referenced_total"] == 1_000_000
    assert finding.evidence["excess"] == 100_000
    assert finding.evidence["references"][0]["referenced_id"] == 100


def test_credit_note_exactly_the_rest_is_fine():
    ref = ReferenceFacts("33", "12", 3, 100, 1_000_000, already_credited=400_000)
    assert review(credit_note(total=600_000, references=(ref,))) == []
    over = dataclasses.replace(ref, already_credited=400_001)
    assert "credit_note_exceeds_reference" in codes(
        review(credit_note(total=600_000, references=(over,)))
    )


def test_credit_note_without_already_credited_message():
    ref = ReferenceFacts("33", "12", 1, 100, 1_000_000)
    finding = only(
        review(credit_note(total=1_000_001, references=(ref,))), "credit_note_exceeds_reference"
    )
    assert "por $ 1.000.001 supera el total de la factura N° 12 ($ 1.000.000) en $ 1." in (
        finding.message
    )


def test_credit_note_unknown_total_or_other_reference_types():
    unknown = ReferenceFacts("33", "12", 3, None, None)
    assert review(credit_note(total=9_000_000, references=(unknown,))) == []
    # An orden de compra (801) carries no total; the factura still counts.
    oc = ReferenceFacts("801", "4500", None, None, None)
    factura = ReferenceFacts("33", "12", 3, 100, 1_000_000)
    assert review(credit_note(total=1_000_000, references=(oc, factura))) == []
    assert "credit_note_exceeds_reference" in codes(
        review(credit_note(total=1_000_001, references=(oc, factura)))
    )
    # A factura of unknown total next to a known one: cannot tell, so nothing.
    assert review(credit_note(total=9_000_000, references=(factura, unknown))) == []


def test_credit_note_against_several_documents_compares_the_sum():
    refs = (
        ReferenceFacts("33", "12", 3, 100, 1_000_000),
        ReferenceFacts("33", "13", 3, 101, 500_000),
        ReferenceFacts("33", "13", 3, 101, 500_000),  # listed twice: counted once
    )
    assert review(credit_note(total=1_500_000, references=refs)) == []
    finding = only(
        review(credit_note(total=1_500_001, references=refs)), "credit_note_exceeds_reference"
    )
    assert "los documentos referenciados (factura N° 12, factura N° 13)" in finding.message
    assert finding.evidence["referenced_total"] == 1_500_000


def test_debit_notes_and_text_corrections_are_not_over_credit():
    ref = ReferenceFacts("33", "12", 3, 100, 1_000_000, already_credited=1_000_000)
    assert review(credit_note(tipo=56, total=2_000_000, references=(ref,))) == []
    text_only = ReferenceFacts("33", "12", 2, 100, 1_000_000, already_credited=1_000_000)
    assert review(credit_note(total=0, references=(text_only,))) == []


# --- factura_partner_incomplete ---------------------------------------------------------------


@pytest.mark.parametrize("tipo", [33, 34, 46, 52, 56, 61])
def test_partner_incomplete_fires_on_facturas_guias_and_notas(tipo):
    document = credit_note(tipo=tipo) if tipo in (56, 61) else doc(tipo=tipo)
    document = dataclasses.replace(
        document, partner_has_giro=False, partner_has_address=False, iva=0
    )
    document = dataclasses.replace(document, monto_total=1_000_000)
    finding = only(review(document), "factura_partner_incomplete")
    assert finding.severity == "warning"
    assert finding.evidence["missing"] == ["giro", "address"]
    assert "el receptor Andina Ltda. no tiene giro ni dirección" in finding.message


def test_partner_incomplete_one_missing_field():
    finding = only(review(doc(partner_has_address=False)), "factura_partner_incomplete")
    assert finding.evidence["missing"] == ["address"]
    assert "no tiene dirección;" in finding.message


@pytest.mark.parametrize("tipo", [39, 41])
def test_partner_incomplete_not_required_on_boletas(tipo):
    document = doc(tipo=tipo)
    document = dataclasses.replace(document, partner_has_giro=False, partner_has_address=False)
    assert "factura_partner_incomplete" not in codes(review(document))


# --- line_amount_mismatch / total_mismatch ----------------------------------------------------


def test_line_amount_mismatch():
    bad = line(quantity=Decimal(3), unit_price=Decimal("3500"), amount=10_502)
    finding = only(review(doc(lines=(line(), bad))), "line_amount_mismatch")
    assert finding.severity == "error"
    assert finding.evidence["line_index"] == 1
    assert finding.evidence["expected_amount"] == 10_500
    assert finding.evidence["difference"] == 2
    assert finding.message == (
        "La línea 2 («Asesoría contable») tiene un monto de $ 10.502, pero 3 × $ 3.500 da $ 10.500."
    )


@pytest.mark.parametrize(("amount", "fires"), [(10_499, False), (10_501, False), (10_498, True)])
def test_line_amount_tolerance_is_one_peso(amount, fires):
    item = line(quantity=Decimal(3), unit_price=Decimal("3500"), amount=amount)
    assert ("line_amount_mismatch" in codes(review(doc(lines=(item,))))) is fires


def test_line_amount_rounds_half_up_with_discount_and_decimals():
    # 1,5 × 333 × 0,9 = 449,55 -> 450 (half up).
    item = line(
        quantity=Decimal("1.5"), unit_price=Decimal(333), discount_pct=Decimal(10), amount=450
    )
    assert "line_amount_mismatch" not in codes(review(doc(lines=(item,))))
    bad = dataclasses.replace(item, amount=452)
    finding = only(review(doc(lines=(bad,))), "line_amount_mismatch")
    assert "1,5 × $ 333 con 10 % de descuento da $ 450" in finding.message
    # 0,5 peso rounds up, not to even.
    half = line(quantity=Decimal(1), unit_price=Decimal("2.5"), amount=3)
    assert rules.expected_line_amount(half) == 3
    finding = only(
        review(doc(lines=(dataclasses.replace(half, amount=5, name=""),))), "line_amount_mismatch"
    )
    assert finding.message == "La línea 1 tiene un monto de $ 5, pero 1 × $ 2,5 da $ 3."


def test_line_amount_gross_prices_use_the_same_formula():
    item = line(quantity=Decimal(2), unit_price=Decimal(1_190), amount=2_380, gross_prices=True)
    assert "line_amount_mismatch" not in codes(review(doc(tipo=39, lines=(item,))))


def test_total_mismatch():
    finding = only(review(doc(monto_total=1_190_002)), "total_mismatch")
    assert finding.severity == "error"
    assert finding.evidence["expected_total"] == 1_190_000
    assert finding.evidence["difference"] == 2
    assert finding.message == (
        "El total de la factura N° 12 ($ 1.190.002) no cuadra: neto $ 1.000.000 + exento $ 0 + "
        "IVA $ 190.000 suman $ 1.190.000."
    )
    # No tolerance: one peso off is wrong.
    assert "total_mismatch" in codes(review(doc(monto_total=1_189_999)))


def test_total_factura_de_compra_retains_iva():
    compra = doc(tipo=46, monto_total=1_000_000)
    assert "total_mismatch" not in codes(review(compra))
    finding = only(review(doc(tipo=46)), "total_mismatch")
    assert finding.evidence["iva_retained"] is True
    assert finding.evidence["expected_total"] == 1_000_000
    assert "se retiene" in finding.message


def test_total_with_exento_and_draft():
    mixed = doc(monto_exento=50_000, monto_total=1_240_000, folio=None)
    assert "total_mismatch" not in codes(review(mixed))
    finding = only(review(dataclasses.replace(mixed, monto_total=1)), "total_mismatch")
    assert "la factura sin folio (id 100)" in finding.message


# --- vat_swing --------------------------------------------------------------------------------

OCT = date(2026, 10, 1)


def months_before(values, period=OCT):
    """[(period - 1 month, v0), (period - 2 months, v1), ...]."""
    result = []
    month = period
    for value in values:
        month = (month - timedelta(days=1)).replace(day=1)
        result.append((month, value))
    return result


def test_vat_swing_fires_with_months_and_values():
    previous = months_before([400_000, 420_000, 380_000, 410_000, 390_000, 400_000])
    finding = only(review_period(OCT, 900_000, previous), "vat_swing")
    assert finding.severity == "warning"
    assert finding.evidence["period"] == "2026-10-01"
    assert finding.evidence["median"] == 400_000
    assert finding.evidence["change_pct"] == 125
    assert finding.evidence["previous"][0] == {"period": "2026-04-01", "iva_determinado": 400_000}
    assert finding.evidence["previous"][-1] == {"period": "2026-09-01", "iva_determinado": 400_000}
    assert finding.message == (
        "El IVA determinado de 10-2026 ($ 900.000) sube 125 % respecto de la mediana de los 6 "
        "meses anteriores, 04-2026 a 09-2026 ($ 400.000)."
    )
    json.dumps(finding.as_dict())


@pytest.mark.parametrize(
    ("iva", "fires"),
    [
        (600_000, False),  # +50 % exactly (and +$ 200.000 exactly)
        (600_001, True),
        (200_000, False),  # -50 %
        (199_999, True),
    ],
)
def test_vat_swing_percent_edge(iva, fires):
    previous = months_before([400_000] * 3)
    assert bool(review_period(OCT, iva, previous)) is fires


def test_vat_swing_needs_the_peso_difference():
    previous = months_before([100_000] * 3)
    assert review_period(OCT, 300_000, previous) == []  # +200 % but only $ 200.000
    assert codes(review_period(OCT, 300_001, previous)) == ["vat_swing"]
    down = only(review_period(OCT, -300_000, months_before([300_000] * 3)), "vat_swing")
    assert "baja 200 %" in down.message


def test_vat_swing_needs_three_earlier_months_and_uses_the_last_six():
    assert review_period(OCT, 5_000_000, months_before([400_000] * 2)) == []
    # Later months and the same month don't count.
    noise = [(OCT, 400_000), (date(2026, 11, 1), 400_000)]
    assert review_period(OCT, 5_000_000, months_before([400_000] * 2) + noise) == []
    # Seven months: the oldest (huge) one is left out, so the median stays 400.000.
    previous = months_before([400_000] * 6 + [50_000_000] * 5)
    finding = only(review_period(OCT, 900_000, previous), "vat_swing")
    assert len(finding.evidence["previous"]) == 6
    assert finding.evidence["median"] == 400_000


def test_vat_swing_from_zero_median():
    previous = months_before([0, 0, 0])
    finding = only(review_period(OCT, 250_000, previous), "vat_swing")
    assert finding.evidence["change_pct"] is None
    assert "sube respecto" in finding.message
    assert review_period(OCT, 0, previous) == []


def test_vat_swing_accepts_any_day_of_the_month():
    previous = [(date(2026, 9, 30), 400_000), (date(2026, 8, 15), 400_000), (date(2026, 7, 1), 4)]
    finding = only(review_period(date(2026, 10, 20), 900_000, previous), "vat_swing")
    assert finding.evidence["period"] == "2026-10-01"


# --- folios_running_out / certificate_expiring ------------------------------------------------


def resources(stocks=(), certificates=()):
    return review_resources(stocks, certificates, today=TODAY)


def test_folios_running_out_by_rate():
    finding = only(resources([FolioStock(33, 60, 200)]), "folios_running_out")
    assert finding.severity == "warning"
    assert finding.evidence == {
        "tipo": 33,
        "remaining": 60,
        "used_last_30_days": 200,
        "days_left": 9,
    }
    assert finding.message == (
        "Quedan 60 folios de factura (tipo 33); al ritmo de los últimos 30 días (200 usados) "
        "alcanzan para unos 9 días. Solicite un nuevo CAF al SII."
    )


@pytest.mark.parametrize(
    ("remaining", "used", "severity"),
    [
        (100, 100, None),  # exactly 30 days at this rate
        (99, 100, "warning"),
        (50, 0, None),
        (49, 0, "warning"),
        (1, 0, "warning"),
        (0, 0, "error"),
        (0, 500, "error"),
        (-3, 5, "error"),
    ],
)
def test_folio_thresholds(remaining, used, severity):
    findings = resources([FolioStock(39, remaining, used)])
    assert [f.severity for f in findings] == ([severity] if severity else [])


def test_folios_empty_and_low_messages():
    (empty,) = resources([FolioStock(61, 0, 3)])
    assert empty.message.startswith("No quedan folios de nota de crédito (tipo 61)")
    (low,) = resources([FolioStock(52, 1, 0)])
    assert (
        low.message == "Quedan 1 folio de guía de despacho (tipo 52). Solicite un nuevo CAF al SII."
    )
    assert low.evidence["days_left"] is None


@pytest.mark.parametrize(
    ("days", "severity", "text"),
    [
        (31, None, None),
        (30, "warning", "vence el 14-11-2026 (en 30 días)"),
        (1, "warning", "(en 1 día)"),
        (0, "warning", "vence el 15-10-2026 (hoy)"),
        (-1, "error", "venció el 14-10-2026"),
    ],
)
def test_certificate_expiring(days, severity, text):
    certificate = CertificateFacts("Juan Pérez", TODAY + timedelta(days=days))
    findings = resources(certificates=[certificate])
    if severity is None:
        assert findings == []
        return
    finding = only(findings, "certificate_expiring")
    assert finding.severity == severity
    assert finding.evidence["days_left"] == days
    assert finding.evidence["not_after"] == (TODAY + timedelta(days=days)).isoformat()
    assert "El certificado digital de Juan Pérez" in finding.message
    assert text in finding.message


def test_resources_in_order_and_empty():
    assert resources() == []
    findings = resources(
        [FolioStock(33, 10, 0), FolioStock(34, 500, 1), FolioStock(39, 0, 0)],
        [CertificateFacts("", TODAY)],
    )
    assert [(f.code, f.evidence.get("tipo")) for f in findings] == [
        ("folios_running_out", 33),
        ("folios_running_out", 39),
        ("certificate_expiring", None),
    ]
    assert findings[-1].message.startswith("El certificado digital vence el")


def test_an_export_priced_in_dollars_is_not_checked_in_pesos():
    export = dataclasses.replace(
        doc(lines=(line(quantity=Decimal(1200), unit_price=Decimal("18.45"), amount=20_890_640),)),
        tipo=110,
        monto_neto=0,
        iva=0,
        monto_exento=41_424_846,
        monto_total=41_424_846,
    )
    found = codes(review(export))
    assert "line_amount_mismatch" not in found and "total_mismatch" not in found
