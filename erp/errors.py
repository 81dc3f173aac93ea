"""The one error family every service raises; edges turn it into a 4xx or a form error."""

from collections.abc import Mapping


class DomainError(Exception):
    """A rule said no. `code` is stable for clients; `message` is Spanish for people;
    `fields` maps a field name (dotted for nested items, e.g. `lines.1.quantity`) to messages."""

    status = 400

    def __init__(
        self, code: str, message: str, fields: Mapping[str, list[str] | str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = {k: [v] if isinstance(v, str) else list(v) for k, v in (fields or {}).items()}

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "fields": self.fields}

    def one_line(self) -> str:
        """The message with its field messages, for a command's output or a task's record."""
        details = "; ".join(
            f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in self.fields.items()
        )
        if details and details not in self.message:
            return f"{self.message} ({details})"
        return self.message


class NotFound(DomainError):
    status = 404

    def __init__(self, message: str = "No encontrado.") -> None:
        super().__init__("not_found", message)


class PermissionDenied(DomainError):
    status = 403

    def __init__(self, message: str = "Su rol no permite esta acción.") -> None:
        super().__init__("permission_denied", message)


# erp's codes
INVALID_INPUT = "invalid_input"
DOCUMENT_NOT_DRAFT = "document_not_draft"
DUPLICATE_RUT = "duplicate_rut"
DUPLICATE_CODE = "duplicate_code"
IN_USE = "in_use"
PERIOD_CLOSED = "period_closed"
DUPLICATE_DOCUMENT = "duplicate_document"
