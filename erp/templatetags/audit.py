"""The audit trail as people read it: each changed field by its Spanish name, with the old and
the new value in es-CL notation when they are short ("Estado: Borrador → Emitido · Folio: — →
123"). AuditEvent keeps the model's name (`entity`) and the raw values (erp.services._plain);
the names and the choices come from that model's fields."""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.apps import apps
from django.db import models
from django.utils import timezone

from erp.money import format_clp, format_decimal

register = template.Library()

# Keys an audit row may carry that are not a field of its model.
EXTRA_LABELS = {
    "lines": "Líneas",
    "replaced_by": "Reemplazado por",
    "desde": "Desde",
    "hasta": "Hasta",
    "holder_rut": "RUT del titular",
    "not_after": "Vigente hasta",
}
# Apps in the order a model name is looked up (a name could repeat across apps).
APP_ORDER = ("erp", "dte", "f29", "ai")
SHORT = 40  # longer texts are named, not quoted
EMPTY = "—"


def _model(entity: str) -> type[models.Model] | None:
    found = [m for m in apps.get_models() if m._meta.model_name == entity]
    found.sort(
        key=lambda m: APP_ORDER.index(m._meta.app_label) if m._meta.app_label in APP_ORDER else 99
    )
    return found[0] if found else None


def _field(model: type[models.Model] | None, name: str) -> models.Field | None:
    if model is None:
        return None
    try:
        field = model._meta.get_field(name)
    except Exception:  # FieldDoesNotExist, or a reverse relation
        return None
    return field if isinstance(field, models.Field) else None


def field_label(model: type[models.Model] | None, name: str) -> str:
    field = _field(model, name)
    if field is not None:
        text = str(field.verbose_name)
    else:
        text = EXTRA_LABELS.get(name, name.replace("_", " "))
    return text[:1].upper() + text[1:]


def _is_money(field: models.Field) -> bool:
    # The stored amounts (monto_*, iva*, descuento…) are plain BigIntegerFields; folios and counts
    # are positive integer fields.
    return type(field) is models.BigIntegerField


def value_text(field: models.Field | None, value: Any) -> str | None:
    """The value in es-CL, or None when it is not worth quoting (long text, a related row)."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, list | dict):
        return None
    if field is not None:
        if field.is_relation:
            return None
        if field.flatchoices:
            choices = {str(k): str(v) for k, v in field.flatchoices}
            return choices.get(str(value), str(value))
        if isinstance(field, models.BooleanField):
            return "Sí" if value else "No"
        try:
            if isinstance(field, models.DateTimeField):
                moment = datetime.fromisoformat(str(value))
                if timezone.is_aware(moment):
                    moment = timezone.localtime(moment)
                return moment.strftime("%d-%m-%Y %H:%M")
            if isinstance(field, models.DateField):
                return date.fromisoformat(str(value)[:10]).strftime("%d-%m-%Y")
            if isinstance(field, models.DecimalField):
                return format_decimal(Decimal(str(value)))
            if _is_money(field):
                return format_clp(int(value))
        except (ValueError, InvalidOperation):
            pass
    if isinstance(value, bool):
        return "Sí" if value else "No"
    text = str(value)
    return text if len(text) <= SHORT else None


def change_texts(entity: str, changes: Any) -> list[str]:
    """One text per changed field: "Estado: Borrador → Emitido", or just "Observaciones"."""
    if not isinstance(changes, dict):
        return []
    model = _model(entity)
    # The model's field order: PostgreSQL's jsonb does not keep the order the keys were written.
    order = {f.name: i for i, f in enumerate(model._meta.fields)} if model else {}
    texts = []
    for name, change in sorted(changes.items(), key=lambda kv: (order.get(kv[0], 999), kv[0])):
        label = field_label(model, name)
        field = _field(model, name)
        if isinstance(change, list) and len(change) == 2:
            old, new = value_text(field, change[0]), value_text(field, change[1])
            texts.append(
                f"{label}: {old} → {new}" if old is not None and new is not None else label
            )
        else:
            new = value_text(field, change)
            texts.append(f"{label}: {new}" if new is not None else label)
    return texts


@register.filter
def audit_changes(event) -> str:
    """An AuditEvent's changes, joined with " · "."""
    return " · ".join(change_texts(event.entity, event.changes))
