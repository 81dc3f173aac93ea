"""Error answers in Spanish (tests run with DEBUG off, as production): 404, 403 from a view's
PermissionDenied, a refused CSRF check, 500 without touching the database; the API keeps its JSON
error shape for each; and /favicon.ico answers with the SVG icon the pages link to."""

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, RequestFactory

from ops import errors, urls

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_the_spanish_404(client, settings):
    assert settings.DEBUG is False
    response = client.get("/no-existe/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "Página no encontrada" in html and "/no-existe/" in html and 'lang="es-CL"' in html
    assert "Not Found" not in html


def test_a_bad_request_is_the_spanish_400(client):
    response = client.get("/", HTTP_HOST="no-es-este-sitio.example")  # not in ALLOWED_HOSTS
    html = response.content.decode()
    assert response.status_code == 400
    assert "Solicitud inválida" in html and 'lang="es-CL"' in html and "Bad Request" not in html


def test_a_signed_in_user_gets_the_404_inside_the_site(client, clerk):
    client.force_login(clerk)
    html = client.get("/documentos/999999/").content.decode()
    assert "Página no encontrada" in html and 'class="topbar"' in html


def test_under_the_api_the_404_stays_json(client):
    response = client.get("/api/v1/no-existe/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_permission_denied_in_a_view_is_the_spanish_403(client, viewer):
    client.force_login(viewer)
    response = client.get("/documentos/nuevo/")  # a viewer may not write documents
    html = response.content.decode()
    assert response.status_code == 403
    assert "Acceso denegado" in html and "Su rol no permite esta acción." in html
    assert "403 Forbidden" not in html


def test_the_api_403_and_500_answer_json():
    request = RequestFactory().get("/api/v1/companies/")
    denied = errors.permission_denied(request, PermissionError("x"))
    assert denied.status_code == 403 and b'"code": "permission_denied"' in denied.content
    failed = errors.server_error(request)
    assert failed.status_code == 500 and b'"code": "server_error"' in failed.content


def test_a_refused_csrf_check_is_a_spanish_page(clerk):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk)
    response = client.post("/clientes/nuevo/", {"rut": "96790240-3"})
    html = response.content.decode()
    assert response.status_code == 403
    assert "El formulario venció" in html and "Vuelva a cargar la página" in html
    assert "Forbidden" not in html and "CSRF verification failed" not in html


def test_a_refused_csrf_check_under_the_api_is_json():
    request = RequestFactory().post("/api/v1/companies/")
    response = errors.csrf_failure(request, reason="CSRF cookie not set.")
    assert response.status_code == 403 and b'"code": "csrf_failed"' in response.content


def test_the_500_page_is_spanish_and_never_queries_the_database(django_assert_num_queries):
    from ops.requestid import REQUEST_ID

    token = REQUEST_ID.set("abc123")
    try:
        with django_assert_num_queries(0):
            response = errors.server_error(RequestFactory().get("/documentos/"))
    finally:
        REQUEST_ID.reset(token)
    html = response.content.decode()
    assert response.status_code == 500
    assert "Ocurrió un error inesperado" in html and "abc123" in html and 'lang="es-CL"' in html


def test_the_project_routes_its_error_handlers_here():
    assert urls.handler403 == "ops.errors.permission_denied"
    assert urls.handler500 == "ops.errors.server_error"


def test_a_view_that_fails_gets_the_500_page(client, clerk, monkeypatch):
    from erp import dashboard

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(dashboard, "month_summary", broken)
    client.raise_request_exception = False
    client.force_login(clerk)
    response = client.get("/")
    assert response.status_code == 500
    assert "Ocurrió un error inesperado" in response.content.decode()


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/favicon.svg"
    assert "max-age=86400" in response["Cache-Control"]
    path = finders.find("favicon.svg")
    assert path and Path(path).read_bytes().startswith(b"<svg")
    page = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
