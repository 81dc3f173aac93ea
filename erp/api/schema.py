"""The schema documents the errors every API operation can answer, once for all of them, in the
project's error shape (erp.api.errors): drf-spectacular describes only the success answers.

- 400 `invalid_input`/`parse_error`: a write, or an operation with query parameters or a body
  (a filter, a page size or a field that does not validate, or a business rule a service
  refuses);
- 401 no or bad credentials, 403 no permission in the company, 429 throttled (`Retry-After`):
  every operation under /api/v1/;
- 404: every operation with a path parameter (a company the user does not belong to, a row of
  another company or none), and a list's page past the last.

An operation that documents one of these codes itself keeps its own."""

ERROR_COMPONENT = "Error"

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error: a stable code, a message in Spanish, and the fields at "
    "fault (dotted paths; `__all__` for the request as a whole).",
    "properties": {
        "code": {"type": "string", "example": "invalid_input"},
        "message": {"type": "string", "example": "Revise los datos ingresados."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["code", "message", "fields"],
}

DESCRIPTIONS = {
    "400": "Invalid input (a parameter or field that does not validate) or a business rule "
    "that refuses the request.",
    "401": "No credentials, or credentials that are not valid.",
    "403": "The user's role in this company does not allow it.",
    "404": "No such company for this user, or no such row in it.",
    "429": "Throttled: too many requests; `Retry-After` says how many seconds to wait.",
}

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _error(code: str) -> dict:
    response: dict = {
        "description": DESCRIPTIONS[code],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
        },
    }
    if code == "429":
        response["headers"] = {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before trying again.",
            }
        }
    return response


def _numbers_accepted(schema) -> None:
    """A decimal is answered as a string (COERCE_DECIMAL_TO_STRING) but DRF takes a JSON number
    as well: a request's decimal field says so."""
    if not isinstance(schema, dict):
        return
    for name, prop in list(schema.get("properties", {}).items()):
        if isinstance(prop, dict) and prop.get("format") == "decimal":
            number = {"type": "number"}
            if prop.get("nullable"):
                number["nullable"] = True
            schema["properties"][name] = {"anyOf": [prop, number]}
        else:
            _numbers_accepted(prop)
    _numbers_accepted(schema.get("items"))


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: the error answers on every /api/v1/ operation."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _numbers_accepted(component)
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        shared = item.get("parameters", [])
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            params = shared + operation.get("parameters", [])
            codes = ["401", "403", "429"]
            writes = method in ("put", "post", "patch", "delete")
            if writes or "requestBody" in operation or any(p.get("in") == "query" for p in params):
                codes.append("400")
            if any(p.get("in") == "path" or p.get("name") == "page" for p in params):
                codes.append("404")
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(code, _error(code))
    return result
