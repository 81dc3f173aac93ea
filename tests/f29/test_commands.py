"""`manage.py rcv_import` and `manage.py f29`: the counts line, idempotence, one-line errors, and
the --json object of the boxes checked against documents written down here."""

import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dte import services as dte_services
from dte.models import Dte
from erp import services as erp_services
from f29 import calc, services
from f29.models import F29Return, RcvEntry, RcvImport
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

RCV = Path(__file__).resolve().parents[1] / "data" / "rcv"
OCTOBER = date(2026, 10, 1)


def run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def rcv_import(name: str, kind: str = "compras", **options) -> str:
    out, _ = run("rcv_import", str(RCV / name), company="76.086.428-5", kind=kind, **options)
    return out


def command_error(*args, **options) -> str:
    with pytest.raises(CommandError) as info:
        run(*args, **options)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# ---------------------------------------------------------------- rcv_import


def test_rcv_import_prints_the_counts_and_is_idempotent(company):
    first = rcv_import("compras_registro_2026-10.csv").splitlines()
    assert first[0] == (
        "compras_registro_2026-10.csv (compras, registro): "
        "created 11, updated 0, unchanged 0, rejected 0"
    )
    assert first[1] == "purchase book: 11 created, 0 updated, 9 new suppliers"
    assert len(first) == 2
    again = rcv_import("compras_registro_2026-10.csv").splitlines()
    assert again == [
        "compras_registro_2026-10.csv (compras, registro): "
        "created 0, updated 0, unchanged 11, rejected 0",
        "purchase book: 0 created, 0 updated, 0 new suppliers",
    ]
    assert RcvImport.objects.count() == 2 and RcvEntry.objects.count() == 11
    assert RcvImport.objects.filter(actor__isnull=True).count() == 2


def test_rcv_import_lists_rejected_rows(company):
    lines = rcv_import("compras_registro_filas_malas.csv").splitlines()
    assert lines[0].endswith("created 2, updated 0, unchanged 0, rejected 2")
    assert lines[2].startswith("  line 3: ") and "RUT" in lines[2]
    assert lines[3].startswith("  line 4: ") and "Fecha Docto" in lines[3]


def test_rcv_import_ventas_estado_and_period(company):
    ventas = rcv_import("ventas_2026-10.csv", kind="ventas").splitlines()
    assert ventas[0].startswith("ventas_2026-10.csv (ventas, registro): created ")
    assert not any(line.startswith("purchase book") for line in ventas)
    pending = rcv_import(
        "compras_pendiente_2026-10.csv", estado="pendiente", period="2026-11"
    ).splitlines()
    assert pending[0].startswith("compras_pendiente_2026-10.csv (compras, pendiente): created 3")
    assert set(RcvEntry.objects.filter(kind="compras").values_list("periodo", flat=True)) == {
        date(2026, 11, 1)
    }


@pytest.mark.parametrize("name", ["basura_binaria.csv", "compras_encabezado_incorrecto.csv"])
def test_malformed_file_is_a_one_line_command_error(company, name):
    message = command_error("rcv_import", str(RCV / name), company="76086428-5", kind="compras")
    assert message.startswith(f"{name}: ") and len(message) > len(name) + 2
    assert not RcvImport.objects.exists() and not RcvEntry.objects.exists()


def test_rcv_import_bad_arguments(company, tmp_path):
    missing = command_error(
        "rcv_import", str(tmp_path / "no.csv"), company="76086428-5", kind="compras"
    )
    assert missing.startswith("cannot read ")
    unknown = command_error(
        "rcv_import", str(RCV / "ventas_2026-10.csv"), company="11111111-1", kind="ventas"
    )
    assert unknown.startswith("--company: ")
    bad_rut = command_error(
        "rcv_import", str(RCV / "ventas_2026-10.csv"), company="76086428-0", kind="ventas"
    )
    assert bad_rut.startswith("--company: ")
    bad_period = command_error(
        "rcv_import",
        str(RCV / "ventas_2026-10.csv"),
        company="76086428-5",
        kind="ventas",
        period="10-2026",
    )
    assert bad_period.startswith("--period: ")
    command_error(
        "rcv_import", str(RCV / "ventas_2026-10.csv"), company="76086428-5", kind="boletas"
    )
    assert not RcvImport.objects.exists()


# ---------------------------------------------------------------- f29


def _issue(company, partner, day, net):
    draft = erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 10, day),
            "partner": partner.pk,
            "lines": [{"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(net)}],
        },
    )
    dte = dte_services.dte_issue(document=draft, actor=None)
    Dte.objects.filter(pk=dte.pk).update(status="accepted")


@pytest.fixture
def books(issuer):
    """October: facturas of 400.000 and 100.000 net accepted by the SII (IVA 95.000); purchases:
    a factura del giro of 200.000 net (IVA 38.000), a fixed asset of 1.000.000 net (IVA
    190.000) and a nota de crédito received of 50.000 net (IVA 9.500)."""
    customer = PartnerFactory(company=issuer, rut="96790240-3")
    supplier = PartnerFactory(company=issuer, rut="76354771-K", is_supplier=True)
    _issue(issuer, customer, 3, 400000)
    _issue(issuer, customer, 8, 100000)
    for tipo, folio, net, fixed in (
        (33, 501, 200000, False),
        (33, 502, 1000000, True),
        (61, 77, 50000, False),
    ):
        erp_services.purchase_document_create(
            company=issuer,
            actor=None,
            data={
                "tipo_doc": tipo,
                "folio": folio,
                "partner": supplier.pk,
                "fecha": date(2026, 10, 15),
                "monto_neto": net,
                "iva_recuperable": net * 19 // 100,
                "is_fixed_asset": fixed,
            },
        )
    return issuer


def test_f29_json_is_one_object_of_box_codes(books):
    out, err = run("f29", company="76086428-5", period="2026-10", json=True, ppm_rate="1.5")
    assert err == "" and len(out.strip().splitlines()) == 1
    boxes = json.loads(out, parse_float=Decimal)
    assert isinstance(boxes, dict)
    assert set(boxes) == {str(code) for code in calc.BOX_CODES}
    for code, value in boxes.items():
        if code == "115":
            assert isinstance(value, Decimal | int) and not isinstance(value, bool)
        else:
            assert type(value) is int, (code, value)
    assert boxes["115"] == Decimal("1.5")
    expected = {
        "503": 2,
        "502": 95000,
        "538": 95000,
        "519": 1,
        "520": 38000,
        "524": 1,
        "525": 190000,
        "527": 1,
        "528": 9500,
        "537": 38000 + 190000 - 9500,
        "77": 218500 - 95000,
        "89": 0,
        "563": 500000,
        "62": 7500,
        "91": 7500,
    }
    assert {k: boxes[k] for k in expected} == expected
    assert F29Return.objects.get(company=books).box(77) == 123500


def test_f29_json_rate_zero_and_recompute(books):
    out, _ = run("f29", company="76086428-5", period="2026-10", json=True)
    boxes = json.loads(out, parse_float=Decimal)
    assert boxes["115"] == 0 and boxes["62"] == 0
    # The rate stays with the period: a later run without --ppm-rate keeps it.
    run("f29", company="76086428-5", period="2026-10", json=True, ppm_rate="2")
    out, _ = run("f29", company="76086428-5", period="2026-10", json=True)
    boxes = json.loads(out, parse_float=Decimal)
    assert boxes["115"] == 2 and boxes["62"] == 10000


def test_f29_table_output(books):
    out, _ = run("f29", company="76086428-5", period="2026-10", ppm_rate="1.5")
    assert "· 10-2026" in out and "76086428-5" in out
    lines = out.splitlines()
    assert "Débitos" in lines and "Créditos" in lines
    line_520 = next(line for line in lines if line.strip().startswith("[520]"))
    assert line_520.endswith("$ 38.000")
    line_519 = next(line for line in lines if line.strip().startswith("[519]"))
    assert line_519.split()[-1] == "1"
    line_115 = next(line for line in lines if line.strip().startswith("[115]"))
    assert line_115.endswith("1,5 %")


def test_f29_shows_a_filed_period_as_it_stands(books):
    f29 = services.f29_compute(company=books, periodo=OCTOBER, actor=None)
    services.f29_file(f29=services.f29_review(f29=f29, actor=None), actor=None)
    computed_at = F29Return.objects.get().computed_at
    out, err = run("f29", company="76086428-5", period="2026-10", json=True, ppm_rate="3")
    assert err == ""
    assert json.loads(out, parse_float=Decimal)["502"] == 95000
    stored = F29Return.objects.get()
    assert stored.computed_at == computed_at and stored.state == "filed"
    assert Decimal(stored.boxes["115"]) == 0  # --ppm-rate does not touch a filed period
    _, err = run("f29", company="76086428-5", period="2026-10")
    assert "filed" in err


def test_f29_of_an_empty_month(company):
    out, _ = run("f29", company="76.086.428-5", period="2026-03", json=True)
    boxes = json.loads(out)
    assert boxes["91"] == 0 and boxes["537"] == 0
    assert F29Return.objects.get().periodo == date(2026, 3, 1)


@pytest.mark.parametrize("period", ["2026-13", "10-2026", "2026", "octubre", ""])
def test_f29_bad_period(company, period):
    message = command_error("f29", company="76086428-5", period=period, json=True)
    assert message.startswith("--period: ")
    assert not F29Return.objects.exists()


@pytest.mark.parametrize("rut", ["11111111-1", "76086428-0", "x"])
def test_f29_unknown_or_invalid_company(company, rut):
    message = command_error("f29", company=rut, period="2026-10", json=True)
    assert message.startswith("--company: ")
    assert not F29Return.objects.exists()


def test_f29_bad_rate_is_a_command_error(company):
    message = command_error("f29", company="76086428-5", period="2026-10", ppm_rate="uno")
    assert "ppm_rate" in message
    assert not F29Return.objects.exists()
