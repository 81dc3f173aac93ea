"""Actions on many sales documents at once, chosen in the document list: send again to the SII,
e-mail to the receiver, print as one PDF. Each document gets its own outcome (done, or skipped
with the reason); one document's refusal never stops the others.

The documents are looked up in the membership's company only: an id of another company's
document is "not found", like any id that does not exist. What each action may do follows the
role, as on the document's own page: e-mailing and sending need ISSUE_DOCUMENTS; a retry of a
document that needs attention is an administrator's (MANAGE_CREDENTIALS), as dte.views.retry;
printing needs only VIEW.
"""

import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from dte import printing, services
from dte.core.domain import DteStatus
from dte.models import Dte
from erp.errors import DomainError, PermissionDenied
from erp.models import Membership, SalesDocument
from erp.tenancy import Perm, require, role_allows

MAX_DOCUMENTS = 200
DONE, SKIPPED = "done", "skipped"
NOT_FOUND = "no encontrado"
DRAFT = "borrador sin folio"
# Why "send again" leaves a document alone, by the state of its DTE.
NOT_RESENDABLE = {
    DteStatus.QUEUED: "ya está en cola para el SII",
    DteStatus.SENT: "ya enviado, esperando la respuesta del SII",
    DteStatus.ACCEPTED: "ya aceptado por el SII",
    DteStatus.ACCEPTED_WITH_OBJECTIONS: "ya aceptado (con reparos) por el SII",
    DteStatus.REJECTED: "rechazado por el SII: corríjalo y emítalo de nuevo",
}
ADMIN_ONLY = "requiere atención: solo un administrador lo reintenta"


@dataclass(frozen=True)
class Outcome:
    label: str  # the document as people name it: "33 N° 15", "borrador #12", "#99"
    status: str  # DONE or SKIPPED
    reason: str = ""


@dataclass
class BulkResult:
    outcomes: list[Outcome] = field(default_factory=list)
    pdf: bytes | None = None

    @property
    def done(self) -> int:
        return sum(1 for o in self.outcomes if o.status == DONE)

    @property
    def skipped(self) -> int:
        return len(self.outcomes) - self.done

    def summary(self, done_words: tuple[str, str]) -> str:
        """`3 enviados, 1 omitido: borrador sin folio (borrador #12)`: the count done, then
        each reason with how many documents it stopped, and which (the first five)."""
        one, many = done_words
        parts = [f"{self.done} {one if self.done == 1 else many}"]
        by_reason: dict[str, list[str]] = defaultdict(list)
        for outcome in self.outcomes:
            if outcome.status == SKIPPED:
                by_reason[outcome.reason].append(outcome.label)
        for reason, labels in by_reason.items():
            shown = ", ".join(labels[:5]) + (f" y {len(labels) - 5} más" if len(labels) > 5 else "")
            word = "omitido" if len(labels) == 1 else "omitidos"
            parts.append(f"{len(labels)} {word}: {reason} ({shown})")
        return ", ".join(parts) + "."


def parse_ids(values: Iterable[str]) -> list[str]:
    """The ids as posted, in order and once each; refuses an empty or too large selection."""
    ids = list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    if not ids:
        raise DomainError("invalid_input", "Seleccione al menos un documento.")
    if len(ids) > MAX_DOCUMENTS:
        raise DomainError(
            "too_many",
            f"Seleccione como máximo {MAX_DOCUMENTS} documentos por acción "
            f"(seleccionó {len(ids)}).",
        )
    return ids


def label(document: SalesDocument) -> str:
    if document.folio:
        return f"{document.tipo_dte} N° {document.folio}"
    return f"borrador #{document.pk}"


def _documents(membership: Membership, ids: list[str]) -> list[tuple[str, SalesDocument | None]]:
    """Each posted id with its document of the membership's company, or None."""
    numbers = {i: int(i) for i in ids if i.isdigit() and len(i) <= 18}
    found = {
        d.pk: d
        for d in SalesDocument.objects.filter(
            company=membership.company, pk__in=set(numbers.values())
        )
        .select_related("partner", "dte", "dte__envelope")
        .defer("dte__xml", "dte__ted", "dte__pdf", "dte__signature_value")
    }
    return [(i, found.get(numbers[i]) if i in numbers else None) for i in ids]


def _dte(document: SalesDocument) -> Dte | None:
    try:
        return document.dte
    except Dte.DoesNotExist:
        return None


def _issued(
    membership: Membership, ids: Iterable[str], result: "BulkResult"
) -> Iterator[tuple[str, Dte]]:
    """The posted documents that have a DTE, with their label; the others are recorded in
    `result` as skipped (not found in the company, or still a draft)."""
    for pk, document in _documents(membership, parse_ids(ids)):
        if document is None:
            result.outcomes.append(Outcome(f"#{pk}", SKIPPED, NOT_FOUND))
            continue
        name, dte = label(document), _dte(document)
        if dte is None:
            result.outcomes.append(Outcome(name, SKIPPED, DRAFT))
            continue
        yield name, dte


def send_again(*, membership: Membership, ids: Iterable[str], actor: Any) -> BulkResult:
    """Send again what can be sent again: a document that needs attention is retried with its
    envelope (dte.services.dte_retry: the same envelope, or the SII's answer asked for again;
    each envelope once, with all its documents); signed documents left without an envelope
    are wrapped in a new one and queued (dte.services.envelope_create, as the beat would).
    Documents queued, sent or judged by the SII are left as they are, with the reason."""
    require(membership, Perm.ISSUE_DOCUMENTS)
    may_retry = role_allows(membership.role, Perm.MANAGE_CREDENTIALS)
    result = BulkResult()
    retried: dict[int | None, tuple[str, str]] = {}  # envelope id -> what its retry did
    unenveloped: list[tuple[str, Dte]] = []
    for name, dte in _issued(membership, ids, result):
        if dte.status == DteStatus.NEEDS_ATTENTION:
            if not may_retry:
                result.outcomes.append(Outcome(name, SKIPPED, ADMIN_ONLY))
                continue
            if dte.envelope_id not in retried:
                retried[dte.envelope_id] = _retry(dte, actor)
            result.outcomes.append(Outcome(name, *retried[dte.envelope_id]))
        elif dte.status == DteStatus.SIGNED and dte.envelope_id is None:
            unenveloped.append((name, dte))
        else:
            reason = NOT_RESENDABLE.get(DteStatus(dte.status), "ya está en cola para el SII")
            result.outcomes.append(Outcome(name, SKIPPED, reason))
    if unenveloped:
        result.outcomes.extend(_envelope(unenveloped, membership, actor))
    return result


def _retry(dte: Dte, actor: Any) -> tuple[str, str]:
    try:
        services.dte_retry(dte=dte, actor=actor)
    except DomainError as exc:
        return SKIPPED, exc.message.rstrip(".")
    return DONE, ""


def _envelope(rows: list[tuple[str, Dte]], membership: Membership, actor: Any) -> list[Outcome]:
    names = {dte.pk: name for name, dte in rows}
    try:
        with transaction.atomic():
            # Still signed and without an envelope once locked (the beat may have wrapped them).
            fresh = list(
                Dte.objects.select_for_update()
                .filter(
                    pk__in=names,
                    company=membership.company,
                    status=DteStatus.SIGNED,
                    envelope__isnull=True,
                )
                .select_related("company")
                .order_by("pk")
            )
            if fresh:
                services.envelope_create(dtes=fresh, actor=actor)
    except DomainError as exc:
        return [Outcome(name, SKIPPED, exc.message) for name in names.values()]
    wrapped = {d.pk for d in fresh}
    return [
        Outcome(name, DONE) if pk in wrapped else Outcome(name, SKIPPED, "ya está en cola")
        for pk, name in names.items()
    ]


def email(*, membership: Membership, ids: Iterable[str], actor: Any) -> BulkResult:
    """Queue the e-mail of each issued document to its receiver's exchange address
    (dte.printing.dte_email_queue, as the document's own "Enviar por correo"). A document the
    SII rejected is not sent to the customer."""
    require(membership, Perm.ISSUE_DOCUMENTS)
    result = BulkResult()
    for name, dte in _issued(membership, ids, result):
        if dte.status == DteStatus.REJECTED:
            result.outcomes.append(Outcome(name, SKIPPED, "rechazado por el SII"))
        else:
            try:
                printing.dte_email_queue(dte)
            except DomainError as exc:
                result.outcomes.append(Outcome(name, SKIPPED, exc.message.rstrip(".")))
            else:
                result.outcomes.append(Outcome(name, DONE))
    return result


def print_merged(*, membership: Membership, ids: Iterable[str]) -> BulkResult:
    """One PDF with every selected issued document, in the order selected: each is its printed
    copy (dte.printing.dte_pdf: the stored one, or rendered and kept), appended by pypdf."""
    from pypdf import PdfReader, PdfWriter

    if not role_allows(membership.role, Perm.VIEW):
        raise PermissionDenied()
    result = BulkResult()
    writer = PdfWriter()
    for name, dte in _issued(membership, ids, result):
        full = Dte.objects.select_related("company").get(pk=dte.pk)  # with its files, one by one
        try:
            pdf = printing.dte_pdf(full)
        except DomainError as exc:
            result.outcomes.append(Outcome(name, SKIPPED, exc.message.rstrip(".")))
            continue
        writer.append(PdfReader(io.BytesIO(pdf)))
        result.outcomes.append(Outcome(name, DONE))
    if result.done:
        output = io.BytesIO()
        writer.write(output)
        result.pdf = output.getvalue()
    return result
