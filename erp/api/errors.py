"""Every API error has one shape: `{code, message, fields}`; fields use dotted paths."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No encontrado.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid_input",
            "message": "Revise los datos ingresados.",
            "fields": _flatten(exc.detail),
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
