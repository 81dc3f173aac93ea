"""Every API error has one shape: `{code, message, fields}`; fields use dotted paths."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from erp.api.throttling import counted
from erp.errors import DomainError


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
    elif isinstance(detail, list) and detail and all(isinstance(d, str) for d in detail):
        out.setdefault(prefix or "__all__", []).extend(str(d) for d in detail)
    elif isinstance(detail, list):
        for i, item in enumerate(detail):
            if item:
                out.update(_flatten(item, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out.setdefault(prefix or "__all__", []).append(str(detail))
    return out


def _throttle_refused(exc, context):
    """DRF checks the throttles after authentication and permissions, so a request refused
    there (no credentials, a bad token, no permission) would never count: an anonymous flood
    would get 401s forever. Such a request counts here, and over the limit it gets the 429."""
    refused = (
        exceptions.NotAuthenticated,
        exceptions.AuthenticationFailed,
        exceptions.PermissionDenied,
    )
    view, request = context.get("view"), context.get("request")
    if not isinstance(exc, refused) or view is None or request is None or counted(request):
        return exc
    try:
        view.check_throttles(request)
    except exceptions.Throttled as throttled:
        return throttled
    return exc


def not_found(request, exception=None):
    """Django's 404 for a URL no route matches (ops.urls' handler404): under /api/ it is the
    API's error shape in JSON, elsewhere the site's page."""
    if request.path.startswith("/api/"):
        body = {"code": "not_found", "message": "No encontrado.", "fields": {}}
        return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
    return page_not_found(request, exception)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No encontrado.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    exc = _throttle_refused(exc, context)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid_input",
            "message": "Revise los datos ingresados.",
            "fields": _flatten(exc.detail),
        }
    elif isinstance(exc, exceptions.Throttled):
        # DRF's handler has set Retry-After (seconds) from exc.wait.
        seconds = exc.wait or 0
        wait = f"espere {seconds} segundo{'' if seconds == 1 else 's'}" if seconds else "espere"
        body = {
            "code": "throttled",
            "message": f"Demasiadas solicitudes: {wait} antes de volver a intentarlo.",
            "fields": {},
        }
    elif isinstance(exc, exceptions.ParseError):
        body = {"code": "parse_error", "message": f"JSON mal formado: {exc.detail}", "fields": {}}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = {
            "code": code if isinstance(code, str) else "error",
            "message": str(detail),
            "fields": {},
        }
    if response.status_code == status.HTTP_404_NOT_FOUND:
        body["code"] = "not_found"
    response.data = body
    return response
