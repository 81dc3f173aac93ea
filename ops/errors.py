"""The answers for requests that fail before or outside a view's own handling: 403, a refused
CSRF check, 500, and the favicon browsers ask for at /favicon.ico.

Pages are Spanish (templates/403.html, 404.html, 500.html); under /api/ the answer keeps the API's
error shape, `{code, message, fields}` in JSON (erp.api.errors), as the 404 there does. The 500
page is a standalone template rendered without context processors: the database may be the
reason of the error.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template import loader
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.defaults import permission_denied as django_permission_denied

from ops.requestid import REQUEST_ID

API_PREFIX = "/api/"
CSRF_MESSAGE = (
    "No se pudo verificar el formulario (protección CSRF): la página estaba abierta desde hace "
    "mucho o la sesión cambió. Vuelva a cargar la página e inténtelo otra vez."
)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _json(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "fields": {}}, status=status)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: PermissionDenied raised by a view (a role that may not do something)."""
    if _is_api(request):
        return _json("permission_denied", "No tiene permiso para realizar esta acción.", 403)
    return django_permission_denied(request, exception, template_name="403.html")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: a form sent without a valid CSRF token."""
    if _is_api(request):
        return _json("csrf_failed", CSRF_MESSAGE, 403)
    template = loader.get_template("403.html")
    body = template.render({"csrf_failure": True, "message": CSRF_MESSAGE}, request)
    return HttpResponse(body, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an unexpected error. The page is rendered without the request, so no context
    processor (and no database query) runs; it shows the request id the logs carry."""
    if _is_api(request):
        return _json("server_error", "Error interno del servidor. Inténtelo más tarde.", 500)
    body = loader.get_template("500.html").render({"request_id": REQUEST_ID.get()})
    return HttpResponse(body, status=500)


@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for whatever the page says: the SVG icon in static/."""
    return redirect(static("favicon.svg"))
