"""Findings 6 of the security review: NUL bytes are a 400 everywhere (not a 500 from
PostgreSQL), CSV exports neutralise formulas, and the public QR page is neither cached nor
indexed."""

import csv
import io
from datetime import date
from types import SimpleNamespace

import pytest

from erp.csvsafe import SafeWriter, cell
from f29.views import reconciliation_csv


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/v/abcdefghijklmnopqrstuvwxyz%00/", "/clientes/?q=a%00b", "/api/v1/companies/?search=%00"],
)
def test_a_nul_byte_in_the_path_or_query_is_a_400(client, clerk, path):
    client.force_login(clerk)
    response = client.get(path)
    assert response.status_code == 400
    assert "carácter nulo" in response.json()["message"]


@pytest.mark.django_db
def test_a_nul_byte_in_a_form_or_json_body_is_a_400(client, clerk, api, company):
    client.force_login(clerk)
    form = client.post(
        "/clientes/nuevo/", "razon_social=a%00b", content_type="application/x-www-form-urlencoded"
    )
    assert form.status_code == 400
    body = api.post(
        f"/api/v1/companies/{company.rut}/partners/",
        '{"razon_social": "a\\u0000b"}',
        content_type="application/json",
    )
    assert body.status_code == 400 and body.json()["code"] == "invalid_input"


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    assert [cell(v) for v in ("=1+1", "+56", "-2", "@SUM(A1)", "\tx", "Ana", -5, 0)] == [
        "'=1+1",
        "'+56",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "Ana",
        -5,
        0,
    ]
    out = io.StringIO()
    SafeWriter(out).writerows([['=HYPERLINK("http://x")', 1]])
    assert out.getvalue().startswith("\"'=HYPERLINK")


def test_the_reconciliation_csv_neutralises_an_rcv_razon_social():
    doc = SimpleNamespace(
        tipo=33,
        folio=7,
        rut="76543210-3",
        razon_social='=HYPERLINK("http://x","y")',
        fecha=date(2026, 10, 1),
    )
    side = SimpleNamespace(
        monto_exento=0, monto_neto=100, monto_iva=19, monto_total=119, estado="registro"
    )
    line = SimpleNamespace(
        category=SimpleNamespace(value="solo_rcv"), doc=doc, differences=[], books=None, rcv=side
    )
    response = reconciliation_csv([line], kind="compras", period="2026-10")
    rows = list(csv.reader(io.StringIO(response.content.decode()), delimiter=";"))
    assert rows[1][4] == '\'=HYPERLINK("http://x","y")'


@pytest.mark.django_db
def test_the_public_page_is_not_cached_nor_indexed(client, issuer, clerk):
    from tests.dte.sii.test_flow import issue

    dte = issue(issuer, clerk)
    for suffix in ("", "?descargar=xml"):
        response = client.get(f"/v/{dte.public_token}/{suffix}")
        assert response.status_code == 200
        assert response["Cache-Control"] == "private, no-store"
        assert "noindex" in response["X-Robots-Tag"]


@pytest.mark.django_db
def test_every_page_has_a_csp_without_inline_scripts(client, clerk):
    from pathlib import Path

    client.force_login(clerk)
    for path in ("/", "/documentos/", "/api/docs/", "/admin/login/"):
        response = client.get(path, follow=True)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    # ... which holds only if no template has an inline script or handler left
    templates = Path(__file__).resolve().parents[2] / "templates"
    for template in templates.rglob("*.html"):
        text = template.read_text()
        assert " onsubmit=" not in text and " onchange=" not in text and " onclick=" not in text
        for tag in text.split("<script")[1:]:
            assert "src=" in tag.split(">")[0], template
