"""A thin wrapper over the official `anthropic` SDK: one review call, structured output through a
forced tool, and every failure turned into `AiUnavailable` with a short Spanish reason.

No Django here: the caller builds `AiConfig` from its settings and passes a minimal payload.
The API key never goes into a log line or an exception message. The SDK is imported on the
first call only, as importing it takes seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import ToolChoiceToolParam, ToolParam

log = logging.getLogger(__name__)

KINDS = ("document", "period")
SEVERITIES = ("info", "warning", "error")
TOOL_NAME = "report_findings"

MAX_FINDINGS = 20
MAX_CODE = 60  # AiFinding.code is a CharField(max_length=60)
MAX_MESSAGE = 400
MAX_EXPLANATION = 1200
MAX_EVIDENCE_STRING = 300
MAX_EVIDENCE_ITEMS = 20
MAX_EVIDENCE_DEPTH = 4

CODE_RE = re.compile(r"^ai_[a-z0-9_]+$")
PROMPTS_DIR = Path(__file__).resolve().with_name("prompts")

BAD_FORMAT = "La respuesta de la IA no tenía el formato esperado."

TOOL: ToolParam = {
    "name": TOOL_NAME,
    "description": (
        "Entrega los hallazgos de la revisión (solo los que las reglas deterministas no cubren) "
        "y una explicación breve en español."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "findings": {
                "type": "array",
                "maxItems": MAX_FINDINGS,
                "items": {
                    "type": "object",
                    "properties": {
                        "code": {
                            "type": "string",
                            "pattern": CODE_RE.pattern,
                            "maxLength": MAX_CODE,
                        },
                        "severity": {"type": "string", "enum": list(SEVERITIES)},
                        "message": {"type": "string", "maxLength": MAX_MESSAGE},
                        "evidence": {"type": "object"},
                    },
                    "required": ["code", "severity", "message", "evidence"],
                    "additionalProperties": False,
                },
            },
            "explanation": {"type": "string", "maxLength": MAX_EXPLANATION},
        },
        "required": ["findings", "explanation"],
        "additionalProperties": False,
    },
}

# Forced: the only possible answer is one call of the tool.
TOOL_CHOICE: ToolChoiceToolParam = {
    "type": "tool",
    "name": TOOL_NAME,
    "disable_parallel_tool_use": True,
}


@dataclass(frozen=True)
class AiConfig:
    api_key: str
    model: str = "claude-sonnet-5-5"
    base_url: str | None = None
    timeout: float = 30.0
    max_retries: int = 2  # the SDK's own retries, which honour retry-after
    max_tokens: int = 1500

    def __repr__(self) -> str:  # keep the key out of reprs, tracebacks and logs
        return (
            f"AiConfig(api_key='***', model={self.model!r}, base_url={self.base_url!r}, "
            f"timeout={self.timeout!r}, max_retries={self.max_retries!r}, "
            f"max_tokens={self.max_tokens!r})"
        )


@dataclass(frozen=True)
class AiFinding:
    code: str
    severity: str
    message: str
    evidence: dict[str, object]


@dataclass(frozen=True)
class AiReview:
    findings: tuple[AiFinding, ...]
    explanation: str
    model: str
    input_tokens: int
    output_tokens: int


class AiUnavailable(Exception):
    """The review could not be done; `reason` is one Spanish line fit to show a user."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        self.reason = " ".join(reason.split())
        self.retryable = retryable
        super().__init__(self.reason)


def review(
    config: AiConfig,
    *,
    kind: str,
    payload: Mapping[str, object],
    rule_codes: Sequence[str],
) -> AiReview:
    """Ask Claude to review a document or an F29 period; raise `AiUnavailable` on any failure."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not config.api_key or not config.api_key.strip():
        raise AiUnavailable("No hay una clave de API de IA configurada.")
    system, user = render_prompt(kind, payload=payload, rule_codes=rule_codes)

    # Imported here: `import anthropic` takes 1-3 s, which no other code path should pay.
    import anthropic

    try:
        with anthropic.Anthropic(
            api_key=config.api_key,
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=config.max_retries,
        ) as client:
            response = client.messages.create(
                model=config.model,
                max_tokens=config.max_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
                tools=[TOOL],
                tool_choice=TOOL_CHOICE,
            )
    except anthropic.AnthropicError as exc:
        raise _unavailable(exc) from None
    except ValueError:  # a 200 whose body is not JSON (json.JSONDecodeError, pydantic errors)
        log.warning("AI review: the response body could not be parsed")
        raise AiUnavailable(BAD_FORMAT) from None

    return _parse_response(response, config)


# --- prompts ---------------------------------------------------------------------------------

_SYSTEM_MARK = "<!-- system -->"
_USER_MARK = "<!-- user -->"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@lru_cache(maxsize=len(KINDS))
def load_prompt(kind: str) -> tuple[str, str]:
    """The (system, user template) pair of `ai/prompts/<kind>.md`."""
    text = (PROMPTS_DIR / f"{kind}.md").read_text(encoding="utf-8")
    head, sep, user = text.partition(_USER_MARK)
    if not sep or _SYSTEM_MARK not in head:
        raise RuntimeError(f"ai/prompts/{kind}.md lacks the {_SYSTEM_MARK} / {_USER_MARK} marks")
    system = head.split(_SYSTEM_MARK, 1)[1]
    return system.strip(), user.strip()


def render_prompt(
    kind: str, *, payload: Mapping[str, object], rule_codes: Sequence[str]
) -> tuple[str, str]:
    system, template = load_prompt(kind)
    codes = sorted({str(code) for code in rule_codes})
    values = {
        "rule_codes": "\n".join(f"- {code}" for code in codes) if codes else "(ninguna)",
        "payload": payload_json(payload),
    }
    # One pass, so nothing inside the inserted payload is ever substituted again.
    return system, _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def payload_json(payload: Mapping[str, object]) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=1, default=_json_default)
    # Escaped so that no string in the data can close the <datos> tag; still the same JSON.
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"payload value of type {type(value).__name__} is not JSON serialisable")


# --- errors ----------------------------------------------------------------------------------


def _unavailable(exc: anthropic.AnthropicError) -> AiUnavailable:
    import anthropic

    status = getattr(exc, "status_code", None)
    request_id = getattr(exc, "request_id", None)
    # Type, status and request id only: never the message, which may quote the request.
    log.warning(
        "AI review failed: %s (status=%s, request_id=%s)", type(exc).__name__, status, request_id
    )

    if isinstance(exc, anthropic.APITimeoutError):
        return AiUnavailable("La IA no respondió a tiempo.", retryable=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return AiUnavailable("No se pudo conectar con el servicio de IA.", retryable=True)
    if isinstance(exc, anthropic.RateLimitError):
        return AiUnavailable(
            "Límite de uso de la IA alcanzado; se reintentará más tarde.", retryable=True
        )
    if isinstance(exc, anthropic.AuthenticationError):
        return AiUnavailable("La clave de la API de IA no es válida.")
    if isinstance(exc, anthropic.PermissionDeniedError):
        return AiUnavailable("La clave de la API de IA no tiene permiso para usar el modelo.")
    if isinstance(exc, anthropic.NotFoundError):
        return AiUnavailable("El modelo de IA configurado no existe (HTTP 404).")
    if isinstance(exc, anthropic.PaymentRequiredError):
        return AiUnavailable("La cuenta de la API de IA no tiene saldo disponible (HTTP 402).")
    if isinstance(exc, anthropic.OverloadedError):
        return AiUnavailable("El servicio de IA está sobrecargado (HTTP 529).", retryable=True)
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code >= 500:
            return AiUnavailable(
                f"El servicio de IA falló (HTTP {exc.status_code}).", retryable=True
            )
        return AiUnavailable(f"El servicio de IA rechazó la solicitud (HTTP {exc.status_code}).")
    if isinstance(exc, anthropic.APIResponseValidationError):
        return AiUnavailable(BAD_FORMAT)
    return AiUnavailable("El servicio de IA falló.", retryable=True)


# --- response --------------------------------------------------------------------------------


class _BadFormat(Exception):
    pass


def _parse_response(response: object, config: AiConfig) -> AiReview:
    try:
        tool_input = _tool_input(response)
        findings, explanation = _validate(tool_input)
    except _BadFormat as exc:
        log.warning("AI review: unexpected response format (%s)", exc)
        raise AiUnavailable(BAD_FORMAT) from None

    model = getattr(response, "model", None)
    usage = getattr(response, "usage", None)
    return AiReview(
        findings=findings,
        explanation=explanation,
        model=_clip(model, 80) if isinstance(model, str) and model.strip() else config.model,
        input_tokens=_tokens(getattr(usage, "input_tokens", 0)),
        output_tokens=_tokens(getattr(usage, "output_tokens", 0)),
    )


def _tool_input(response: object) -> object:
    content = getattr(response, "content", None)  # a str when the body was not JSON
    if not isinstance(content, list):
        raise _BadFormat("no content list")
    for block in content:
        if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == TOOL_NAME:
            return getattr(block, "input", None)
    raise _BadFormat(f"no {TOOL_NAME} tool_use block")


def _validate(data: object) -> tuple[tuple[AiFinding, ...], str]:
    if not isinstance(data, dict):
        raise _BadFormat("tool input is not an object")
    raw_findings = data.get("findings")
    explanation = data.get("explanation")
    if not isinstance(raw_findings, list):
        raise _BadFormat("findings is not a list")
    if not isinstance(explanation, str):
        raise _BadFormat("explanation is not a string")
    findings = tuple(_finding(item) for item in raw_findings[:MAX_FINDINGS])
    return findings, _clip(explanation, MAX_EXPLANATION)


def _finding(item: object) -> AiFinding:
    if not isinstance(item, dict):
        raise _BadFormat("finding is not an object")
    code, severity = item.get("code"), item.get("severity")
    message, evidence = item.get("message"), item.get("evidence")
    if not isinstance(code, str) or not CODE_RE.fullmatch(code.strip()):
        raise _BadFormat("bad finding code")
    if len(code.strip()) > MAX_CODE:
        raise _BadFormat("finding code too long")
    if not isinstance(severity, str) or severity.strip() not in SEVERITIES:
        raise _BadFormat("bad finding severity")
    if not isinstance(message, str) or not message.strip():
        raise _BadFormat("bad finding message")
    if not isinstance(evidence, dict):
        raise _BadFormat("finding evidence is not an object")
    return AiFinding(
        code=code.strip(),
        severity=severity.strip(),
        message=_clip(message, MAX_MESSAGE),
        evidence=_clean_evidence(evidence, 0),
    )


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _clean_evidence(value: dict[object, object], depth: int) -> dict[str, object]:
    items = list(value.items())[:MAX_EVIDENCE_ITEMS]
    return {_clip(str(key), MAX_CODE): _clean_value(item, depth + 1) for key, item in items}


def _clean_value(value: object, depth: int) -> object:
    """Bounded JSON for a JSONField: short strings, few items, no NaN, not too deep."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _clip(value, MAX_EVIDENCE_STRING)
    if depth >= MAX_EVIDENCE_DEPTH:
        return _clip(json.dumps(value, ensure_ascii=False, default=str), MAX_EVIDENCE_STRING)
    if isinstance(value, dict):
        return _clean_evidence(value, depth)
    if isinstance(value, list):
        return [_clean_value(item, depth + 1) for item in value[:MAX_EVIDENCE_ITEMS]]
    return _clip(str(value), MAX_EVIDENCE_STRING)


def _tokens(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
