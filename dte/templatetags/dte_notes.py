"""`{% notes_panel document %}`: an issued document's notas, what remains of it and the action
to draft a new one; `{% issue_problems document %}`: what stops a draft from being issued."""

from django import template

from dte import notes
from erp.doctypes import CodRef
from erp.models import SalesDocument

register = template.Library()


@register.inclusion_tag("dte/_notes.html", takes_context=True)
def notes_panel(context, document: SalesDocument):
    shown = document.folio is not None and document.tipo.accepts_notes
    summary = notes.notes_of(document) if shown else None
    return {
        "csrf_token": context.get("csrf_token"),
        "can_edit": context.get("can_edit"),
        "document": document,
        "shown": shown,
        "summary": summary,
        "note_types": [(int(t), t.label) for t in notes.note_types_for(document)],
        "reasons": [(int(code), label) for code, label in notes.REASONS.items()],
        "default_reason": int(CodRef.ANULA),
    }


@register.inclusion_tag("dte/_issue_problems.html")
def issue_problems(document: SalesDocument):
    problems = notes.issue_problems(document) if document.is_draft else {}
    return {"problems": [m for messages in problems.values() for m in messages]}
