"""Requests nobody should send: a NUL byte in the path, the query, a form field or a JSON body.
PostgreSQL cannot store one in text and answered 500; it is refused here with a 400, once, for
every view. File uploads (multipart) are not scanned: their bytes are the file's."""

from urllib.parse import unquote_to_bytes

from django.http import JsonResponse

MESSAGE = "La solicitud contiene un carácter nulo (NUL), que no se acepta."


def _has_nul(request) -> bool:
    if "\x00" in request.path:
        return True
    if b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
        return True
    content_type = request.META.get("CONTENT_TYPE", "")
    if request.method in ("POST", "PUT", "PATCH"):
        if content_type.startswith("application/x-www-form-urlencoded"):
            return b"\x00" in unquote_to_bytes(request.body.replace(b"+", b" "))
        if content_type.startswith("application/json"):
            return b"\\u0000" in request.body or b"\x00" in request.body
    return False


class RefuseNulBytes:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            return JsonResponse(
                {"code": "invalid_input", "message": MESSAGE, "fields": {}}, status=400
            )
        return self.get_response(request)


# Scripts from this site only: no inline script or handler anywhere (static/js/app.js carries
# the shared behaviour; Swagger UI's start-up script is a file too). Inline style attributes
# stay allowed (Django admin sets a few); nothing may frame the app.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class ContentSecurityPolicy:
    """The one place that sets the Content-Security-Policy of every answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
