"""ai/client.py against the local Messages API stub (tests/ai/stub.py): never the internet."""

import json
import re
import time
import traceback
from decimal import Decimal

import pytest

from ai.client import TOOL_NAME, AiConfig, AiFinding, AiUnavailable, review

KEY = "sk-ant-test-0123456789-SECRETO"
MODEL = "claude-test-model"
PAYLOAD = {
    "tipo_dte": 33,
    "folio": 1201,
    "fecha_emision": "2025-03-14",
    "receptor": {"rut": "76.086.428-5", "razon_social": "Comercial Ñandú <Ltda>"},
    "montos": {"neto": 100000, "iva": 19000, "total": 119000},
}
RULE_CODES = ["totales_no_cuadran", "iva_tasa_incorrecta"]
FINDING = {
    "code": "ai_referencia_faltante",
    "severity": "warning",
    "message": "La nota de crédito no indica qué documento corrige.",
    "evidence": {"tipo_dte": 61, "referencias": []},
}
FORMAT_REASON = "La respuesta de la IA no tenía el formato esperado."


def config(stub, **overrides) -> AiConfig:
    options = {"api_key": KEY, "model": MODEL, "base_url": stub.url, "max_retries": 0}
    return AiConfig(**(options | overrides))


def run(stub, kind="document", payload=PAYLOAD, rule_codes=RULE_CODES, **overrides):
    return review(config(stub, **overrides), kind=kind, payload=payload, rule_codes=rule_codes)


def failure(stub, **overrides) -> AiUnavailable:
    with pytest.raises(AiUnavailable) as info:
        run(stub, **overrides)
    exc = info.value
    shown = [str(exc), repr(exc), exc.reason, "".join(traceback.format_exception(exc))]
    assert not any(KEY in text for text in shown)
    assert "\n" not in exc.reason
    return exc


def sent_key(headers: dict[str, str]) -> str | None:
    """The key as the SDK sent it: `x-api-key`, or `Authorization: Bearer` (anthropic 2.x)."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def payload_in(text: str) -> object:
    match = re.search(r"<datos>\s*(.*?)\s*</datos>", text, re.S)
    assert match, "the user message has no <datos> block"
    return json.loads(match.group(1))


# --- success ---------------------------------------------------------------------------------


def test_ok_returns_findings_and_sends_a_forced_tool_call(ai_stub):
    ai_stub.ok([FINDING], "Falta la referencia.", input_tokens=1234, output_tokens=56)

    result = run(ai_stub, max_tokens=900)

    assert result.findings == (AiFinding(**FINDING),)
    assert result.explanation == "Falta la referencia."
    assert (result.model, result.input_tokens, result.output_tokens) == (MODEL, 1234, 56)

    [request] = ai_stub.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert sent_key(request.headers) == KEY
    body = request.body
    assert body["model"] == MODEL
    assert body["max_tokens"] == 900
    [tool] = body["tools"]
    assert tool["name"] == TOOL_NAME
    schema = tool["input_schema"]
    assert schema["required"] == ["findings", "explanation"]
    item = schema["properties"]["findings"]["items"]
    assert item["properties"]["code"]["pattern"] == "^ai_[a-z0-9_]+$"
    assert item["properties"]["severity"]["enum"] == ["info", "warning", "error"]
    assert body["tool_choice"]["type"] == "tool"
    assert body["tool_choice"]["name"] == TOOL_NAME
    assert [m["role"] for m in body["messages"]] == ["user"]

    assert "contador" in request.system and "DTE" in request.system
    assert payload_in(request.user_text) == PAYLOAD
    assert "</Ltda>" not in request.user_text  # data cannot close the <datos> tag
    for code in RULE_CODES:
        assert f"- {code}" in request.user_text
    assert KEY not in request.raw.decode()


def test_period_prompt_and_no_rule_codes(ai_stub):
    ai_stub.ok()
    payload = {"periodo": "2025-02", "debito_fiscal": Decimal("190000"), "credito_fiscal": 0}

    result = run(ai_stub, kind="period", payload=payload, rule_codes=[])

    assert result.findings == ()
    [request] = ai_stub.requests
    assert "Formulario 29" in request.system
    assert "(ninguna)" in request.user_text
    assert payload_in(request.user_text)["debito_fiscal"] == "190000"


def test_strings_are_clipped_and_findings_capped(ai_stub):
    many = [FINDING | {"code": f"ai_hallazgo_{i}", "message": "  x" * 300} for i in range(25)]
    ai_stub.ok(many, "  " + "y" * 2000 + "  ")

    result = run(ai_stub)

    assert len(result.findings) == 20
    assert all(len(f.message) <= 400 and not f.message.startswith(" ") for f in result.findings)
    assert len(result.explanation) == 1200


def test_no_key_means_no_request(ai_stub):
    exc = failure(ai_stub, api_key="  ")
    assert not exc.retryable
    assert ai_stub.requests == []


def test_unknown_kind_is_a_programming_error(ai_stub):
    with pytest.raises(ValueError):
        run(ai_stub, kind="factura")


# --- HTTP failures ---------------------------------------------------------------------------


def test_rate_limit_then_ok_succeeds_through_the_sdk_retry(ai_stub):
    ai_stub.rate_limited(retry_after="0").ok([FINDING])

    result = run(ai_stub, max_retries=2)

    assert [f.code for f in result.findings] == ["ai_referencia_faltante"]
    assert len(ai_stub.requests) == 2
    assert ai_stub.requests[1].headers["x-stainless-retry-count"] == "1"


def test_rate_limit_beyond_the_retries_is_retryable(ai_stub):
    for _ in range(3):
        ai_stub.rate_limited(retry_after_ms="1")  # keeps the SDK's back-off short

    exc = failure(ai_stub, max_retries=2)

    assert exc.reason == "Límite de uso de la IA alcanzado; se reintentará más tarde."
    assert exc.retryable
    assert len(ai_stub.requests) == 3


def test_server_error(ai_stub):
    ai_stub.server_error(500)
    exc = failure(ai_stub)
    assert exc.reason == "El servicio de IA falló (HTTP 500)."
    assert exc.retryable


def test_overloaded(ai_stub):
    ai_stub.overloaded()
    exc = failure(ai_stub)
    assert "529" in exc.reason
    assert exc.retryable


def test_bad_key(ai_stub):
    ai_stub.unauthorized()
    exc = failure(ai_stub, max_retries=2)
    assert exc.reason == "La clave de la API de IA no es válida."
    assert not exc.retryable
    assert len(ai_stub.requests) == 1  # a 401 is not retried


def test_timeout(ai_stub):
    ai_stub.ok(delay=2.0)
    started = time.monotonic()

    exc = failure(ai_stub, timeout=0.5, max_retries=0)

    assert time.monotonic() - started < 1.8
    assert exc.reason == "La IA no respondió a tiempo."
    assert exc.retryable


def test_connection_refused(ai_stub):
    url = ai_stub.url
    ai_stub.stop()
    exc = failure(ai_stub, base_url=url)
    assert exc.reason == "No se pudo conectar con el servicio de IA."
    assert exc.retryable


# --- malformed output ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(lambda stub: stub.text_only(), id="text-only"),
        pytest.param(lambda stub: stub.invalid_json(), id="invalid-json-body"),
        pytest.param(lambda stub: stub.tool_input({"findings": []}), id="no-explanation"),
        pytest.param(lambda stub: stub.tool_input({"explanation": "ok"}), id="no-findings"),
        pytest.param(lambda stub: stub.tool_input("texto"), id="input-not-object"),
        pytest.param(
            lambda stub: stub.tool_input({"findings": [], "explanation": "ok"}, name="otra"),
            id="other-tool",
        ),
        pytest.param(
            lambda stub: stub.tool_input({"findings": {}, "explanation": "ok"}), id="findings-dict"
        ),
        pytest.param(
            lambda stub: stub.tool_input({"findings": [], "explanation": 7}), id="explanation-int"
        ),
        pytest.param(lambda stub: stub.ok([{**FINDING, "code": "referencia"}]), id="no-ai-prefix"),
        pytest.param(lambda stub: stub.ok([{**FINDING, "code": "ai_Mayus"}]), id="bad-code"),
        pytest.param(lambda stub: stub.ok([{**FINDING, "severity": "critical"}]), id="severity"),
        pytest.param(lambda stub: stub.ok([{**FINDING, "message": "  "}]), id="empty-message"),
        pytest.param(lambda stub: stub.ok([{**FINDING, "evidence": "x"}]), id="evidence-str"),
        pytest.param(
            lambda stub: stub.ok([{k: v for k, v in FINDING.items() if k != "evidence"}]),
            id="missing-evidence",
        ),
        pytest.param(lambda stub: stub.ok(["ai_algo"]), id="finding-not-object"),
    ],
)
def test_malformed_output_is_not_retryable(ai_stub, script):
    script(ai_stub)

    exc = failure(ai_stub, max_retries=2)

    assert exc.reason == FORMAT_REASON
    assert not exc.retryable
    assert len(ai_stub.requests) == 1
