"""AI checks on documents and F29 periods: the deterministic rules (ai.rules) always, then
Claude (ai.client) when a key is set, the daily budget allows, and the same input was not
already answered (cached by its hash). Issuing or filing never waits on, or fails by, this."""

import hashlib
import json
import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone
from prometheus_client import Counter, Histogram

from ai import client as ai_client
from ai import rules
from ai.models import AiFinding, AiReview, AiUsage
from dte.models import Caf, Certificate, Dte
from erp import services as erp_services
from erp.errors import INVALID_INPUT, DomainError
from erp.models import Company, DocumentState, SalesDocument
from erp.periods import previous_period
from erp.totals import liquidated_credit
from f29.models import F29Return

log = logging.getLogger(__name__)

AI_CALLS = Counter("ai_calls_total", "Claude reviews by kind and outcome", ["kind", "outcome"])
AI_TOKENS = Counter("ai_tokens_total", "Tokens spent on Claude reviews", ["direction"])
AI_LATENCY = Histogram(
    "ai_call_seconds", "Latency of Claude reviews", ["kind"], buckets=(0.5, 1, 2, 5, 10, 20, 40)
)
PROMPT_VERSION = "2026-11-1"  # part of the cache key: a new prompt is a new answer
HISTORY_LIMIT = 200


# ---------------------------------------------------------------- facts for the rules


def _facts(document: SalesDocument) -> rules.DocumentFacts:
    partner = document.partner
    lines = tuple(
        rules.LineFacts(
            name=ln.name,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
            discount_pct=ln.discount_pct,
            is_exempt=ln.is_exempt,
            amount=ln.amount,
            product_code=ln.product.code if ln.product else None,
            product_is_exempt=ln.product.is_exempt if ln.product else None,
            gross_prices=document.tipo.gross_prices,
            subtracts=liquidated_credit(ln.tipo_doc_liq),
        )
        for ln in document.lines.select_related("product").order_by("line_number")
    )
    references = []
    for ref in document.references.order_by("line_number"):
        referenced = (
            SalesDocument.objects.filter(
                company=document.company,
                tipo_dte=int(ref.tipo_doc_ref) if ref.tipo_doc_ref.isdigit() else -1,
                folio=int(ref.folio_ref) if ref.folio_ref.isdigit() else -1,
                state=DocumentState.ISSUED,
            ).first()
            if ref.tipo_doc_ref.isdigit() and ref.folio_ref.isdigit()
            else None
        )
        credited = 0
        if referenced is not None:
            credited = (
                SalesDocument.objects.filter(
                    company=document.company,
                    tipo_dte=61,
                    state=DocumentState.ISSUED,
                    references__tipo_doc_ref=ref.tipo_doc_ref,
                    references__folio_ref=ref.folio_ref,
                )
                .exclude(pk=document.pk)
                .aggregate(total=Sum("monto_total"))["total"]
                or 0
            )
        references.append(
            rules.ReferenceFacts(
                tipo=ref.tipo_doc_ref,
                folio=ref.folio_ref,
                cod_ref=ref.cod_ref,
                referenced_id=referenced.pk if referenced else None,
                referenced_total=referenced.monto_total if referenced else None,
                already_credited=credited,
            )
        )
    return rules.DocumentFacts(
        id=document.pk,
        tipo=document.tipo_dte,
        folio=document.folio,
        fecha=document.fecha_emision,
        partner_id=partner.pk if partner else None,
        partner_name=partner.razon_social if partner else "",
        partner_has_giro=bool(partner and partner.giro.strip()),
        partner_has_address=bool(partner and partner.direccion.strip()),
        monto_neto=document.monto_neto,
        monto_exento=document.monto_exento,
        iva=document.iva,
        monto_total=document.monto_total,
        comisiones=document.comision_neto + document.comision_exento + document.comision_iva,
        lines=lines,
        references=tuple(references),
    )


def _history(document: SalesDocument) -> list[rules.PastDocument]:
    if document.partner_id is None:
        return []
    rows = (
        SalesDocument.objects.filter(
            company=document.company, partner_id=document.partner_id, state=DocumentState.ISSUED
        )
        .exclude(pk=document.pk)
        .order_by("-fecha_emision", "-id")
        .values_list("id", "tipo_dte", "folio", "fecha_emision", "monto_total")[:HISTORY_LIMIT]
    )
    return [rules.PastDocument(*row) for row in rows]


def _resources(company: Company, today: date) -> list[rules.Finding]:
    since = today - timedelta(days=30)
    used = dict(
        Dte.objects.filter(company=company, fecha_emision__gte=since)
        .values("tipo_dte")
        .annotate(n=Count("id"))
        .values_list("tipo_dte", "n")
    )
    stock: dict[int, int] = {}
    for caf in Caf.objects.filter(company=company, next_folio__lte=F("folio_hasta")):
        stock[caf.tipo_dte] = stock.get(caf.tipo_dte, 0) + caf.remaining
    stocks = [
        rules.FolioStock(tipo=tipo, remaining=stock.get(tipo, 0), used_last_30_days=n)
        for tipo, n in used.items()
    ]
    certificates = [
        rules.CertificateFacts(holder=c.holder_name, not_after=c.not_after.date())
        for c in Certificate.objects.filter(company=company, is_active=True)
    ]
    return rules.review_resources(stocks, certificates, today=today)


# ---------------------------------------------------------------- what Claude sees


def document_payload(document: SalesDocument, history: Sequence[rules.PastDocument]) -> dict:
    """Only what the check needs: no RUTs, names, addresses, keys or other companies' data."""
    totals = [h.monto_total for h in history if h.tipo == document.tipo_dte]
    return {
        "tipo_dte": document.tipo_dte,
        "fecha": document.fecha_emision.isoformat(),
        "giro_receptor": document.partner.giro if document.partner else "",
        "forma_pago": document.forma_pago,
        "monto_neto": document.monto_neto,
        "monto_exento": document.monto_exento,
        "iva": document.iva,
        "monto_total": document.monto_total,
        "lineas": [
            {
                "nombre": ln.name,
                "cantidad": str(ln.quantity),
                "precio_unitario": str(ln.unit_price),
                "descuento_pct": str(ln.discount_pct),
                "exento": ln.is_exempt,
                "monto": ln.amount,
            }
            for ln in document.lines.order_by("line_number")
        ],
        "referencias": [
            {"tipo": r.tipo_doc_ref, "cod_ref": r.cod_ref, "razon": r.razon_ref}
            for r in document.references.order_by("line_number")
        ],
        "historial_receptor": {
            "documentos_mismo_tipo": len(totals),
            "mediana_total": int(statistics.median(totals)) if totals else None,
        },
    }


def period_payload(f29: F29Return, previous: Sequence[tuple[date, int]]) -> dict:
    return {
        "periodo": f29.periodo.isoformat()[:7],
        "casillas": {code: value for code, value in f29.boxes.items()},
        "iva_determinado_meses_anteriores": [
            {"periodo": p.isoformat()[:7], "iva_determinado": v} for p, v in previous
        ],
    }


# ---------------------------------------------------------------- the Claude step


@dataclass(frozen=True)
class AiOutcome:
    status: str
    reason: str = ""
    review: ai_client.AiReview | None = None
    input_hash: str = ""


def _hash(kind: str, payload: Mapping[str, Any], rule_codes: Sequence[str]) -> str:
    blob = json.dumps(
        {
            "v": PROMPT_VERSION,
            "model": settings.AI_MODEL,
            "kind": kind,
            "payload": payload,
            "rules": sorted(rule_codes),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _budget_left(company: Company, today: date) -> int:
    usage = AiUsage.objects.filter(company=company, day=today).first()
    spent = (usage.input_tokens + usage.output_tokens) if usage else 0
    return settings.AI_DAILY_TOKEN_BUDGET - spent


def _record_usage(company: Company, today: date, review: ai_client.AiReview) -> None:
    usage, _ = AiUsage.objects.get_or_create(company=company, day=today)
    AiUsage.objects.filter(pk=usage.pk).update(
        calls=F("calls") + 1,
        input_tokens=F("input_tokens") + review.input_tokens,
        output_tokens=F("output_tokens") + review.output_tokens,
    )
    AI_TOKENS.labels("input").inc(review.input_tokens)
    AI_TOKENS.labels("output").inc(review.output_tokens)


# What staff read when this installation has no AI key; the technical hint (the variable to
# set) goes to the log, once per process, and to the review's page in admin (ai.admin).
OFF_REASON = (
    "La revisión con IA no está configurada en esta instalación; "
    "las reglas automáticas sí se aplicaron."
)
OFF_ADMIN_HINT = (
    "La variable de entorno ANTHROPIC_API_KEY no está definida: sin ella solo corren las reglas "
    "automáticas. Defínala (y reinicie la aplicación) para activar la revisión con IA."
)
_off_logged = False


def _log_off_once() -> None:
    global _off_logged
    if not _off_logged:
        _off_logged = True
        log.info("AI review is off: ANTHROPIC_API_KEY is not set (only the rules run)")


def ai_step(
    company: Company, kind: str, payload: Mapping[str, Any], rule_codes: Sequence[str]
) -> AiOutcome:
    if not settings.ANTHROPIC_API_KEY:
        AI_CALLS.labels(kind, "off").inc()
        _log_off_once()
        return AiOutcome("off", OFF_REASON)
    key = _hash(kind, payload, rule_codes)
    cached = cache.get(f"ai:review:{key}")
    if cached is not None:
        AI_CALLS.labels(kind, "cached").inc()
        return AiOutcome("cached", review=cached, input_hash=key)
    today = timezone.localdate()
    if _budget_left(company, today) <= 0:
        AI_CALLS.labels(kind, "budget").inc()
        return AiOutcome(
            "budget",
            f"Se agotó el presupuesto diario de IA ({settings.AI_DAILY_TOKEN_BUDGET} tokens); "
            "se puede revisar de nuevo mañana.",
            input_hash=key,
        )
    config = ai_client.AiConfig(
        api_key=settings.ANTHROPIC_API_KEY,
        model=settings.AI_MODEL,
        base_url=settings.ANTHROPIC_BASE_URL,
        timeout=settings.AI_TIMEOUT,
        max_retries=settings.AI_MAX_RETRIES,
    )
    start = time.perf_counter()
    try:
        review = ai_client.review(config, kind=kind, payload=payload, rule_codes=rule_codes)
    except ai_client.AiUnavailable as exc:
        AI_CALLS.labels(kind, "error").inc()
        log.warning("AI review failed: %s", exc.reason)
        return AiOutcome("failed", exc.reason, input_hash=key)
    finally:
        AI_LATENCY.labels(kind).observe(time.perf_counter() - start)
    AI_CALLS.labels(kind, "ok").inc()
    _record_usage(company, today, review)
    cache.set(f"ai:review:{key}", review, settings.AI_CACHE_SECONDS)
    return AiOutcome("ok", review=review, input_hash=key)


def _store(
    *,
    company: Company,
    target: str,
    found: Sequence[rules.Finding],
    outcome: AiOutcome,
    actor,
    document: SalesDocument | None = None,
    f29: F29Return | None = None,
) -> AiReview:
    review = outcome.review
    with transaction.atomic():
        stored = AiReview.objects.create(
            company=company,
            target=target,
            sales_document=document,
            f29=f29,
            ai_status=outcome.status,
            ai_reason=outcome.reason[:300],
            explanation=review.explanation if review else "",
            model=review.model if review else "",
            input_hash=outcome.input_hash,
            input_tokens=review.input_tokens if review and outcome.status == "ok" else 0,
            output_tokens=review.output_tokens if review and outcome.status == "ok" else 0,
            actor=erp_services.user_or_none(actor),
        )
        rows = [
            AiFinding(
                review=stored,
                source=AiFinding.Source.RULES,
                code=f.code,
                severity=f.severity,
                message=f.message,
                evidence=dict(f.evidence),
            )
            for f in found
        ]
        if review is not None:
            rows += [
                AiFinding(
                    review=stored,
                    source=AiFinding.Source.AI,
                    code=f.code,
                    severity=f.severity,
                    message=f.message,
                    evidence=dict(f.evidence),
                )
                for f in review.findings
            ]
        AiFinding.objects.bulk_create(rows)
    return stored


# ---------------------------------------------------------------- reviews


def ai_review_document(
    *, document: SalesDocument, actor=None, today: date | None = None
) -> AiReview:
    today = today or timezone.localdate()
    document = SalesDocument.objects.select_related("partner", "company").get(pk=document.pk)
    history = _history(document)
    found = rules.review_document(_facts(document), history, today=today)
    if document.state == DocumentState.ISSUED:
        found += _resources(document.company, today)
    outcome = ai_step(
        document.company, "document", document_payload(document, history), [f.code for f in found]
    )
    return _store(
        company=document.company,
        target=AiReview.Target.DOCUMENT,
        found=found,
        outcome=outcome,
        actor=actor,
        document=document,
    )


def ai_review_period(*, f29: F29Return, actor=None) -> AiReview:
    previous = []
    period = f29.periodo
    for _ in range(6):
        period = previous_period(period)
        row = F29Return.objects.filter(company=f29.company, periodo=period).first()
        if row is not None:
            previous.append((period, row.box(89)))
    found = rules.review_period(f29.periodo, f29.box(89), previous)
    outcome = ai_step(f29.company, "period", period_payload(f29, previous), [f.code for f in found])
    return _store(
        company=f29.company,
        target=AiReview.Target.PERIOD,
        found=found,
        outcome=outcome,
        actor=actor,
        f29=f29,
    )


def finding_decide(*, finding: AiFinding, actor, decision: str) -> AiFinding:
    states = {"accept": AiFinding.State.ACCEPTED, "dismiss": AiFinding.State.DISMISSED}
    if decision not in states:
        message = "Use accept o dismiss."
        raise DomainError(INVALID_INPUT, message, {"decision": message})
    AiFinding.objects.filter(pk=finding.pk).update(
        state=states[decision],
        decided_by=erp_services.user_or_none(actor),
        decided_at=timezone.now(),
    )
    finding.refresh_from_db()
    return finding


def latest_review(
    *, company: Company, document: SalesDocument | None = None, f29: F29Return | None = None
) -> AiReview | None:
    qs = AiReview.objects.filter(company=company)
    qs = qs.filter(sales_document=document) if document is not None else qs.filter(f29=f29)
    return qs.prefetch_related("findings").order_by("-created_at", "-id").first()
