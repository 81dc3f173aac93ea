"""A local stand-in for the Anthropic Messages API, so tests never reach api.anthropic.com.

`MessagesStub` is a threaded HTTP server on 127.0.0.1 (a free port) that answers
`POST /v1/messages` with responses scripted per test, in order, in the real API's shapes, and
records every request it gets (path, lower-cased headers, parsed JSON body):

    stub.ok(findings=[...], explanation="...")     # a tool_use answer
    stub.rate_limited()                             # 429 + retry-after: 0
    stub.server_error(500) / stub.overloaded()      # 500 api_error / 529 overloaded_error
    stub.ok(..., delay=2.0)                         # answers after a (bounded) delay
    stub.text_only("...") / stub.tool_input({...}) / stub.invalid_json()

A request with nothing scripted gets a non-retryable 500 and is counted in `stub.unscripted`.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_DELAY = 5.0  # seconds; a scripted delay never holds a test longer than this
TOOL_NAME = "report_findings"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo_model: bool = False  # a message whose "model" is the one the request asked for


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON, or None when the body was not JSON
    raw: bytes

    @property
    def system(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, list):  # text blocks
            return "\n".join(block.get("text", "") for block in system)
        return str(system)

    @property
    def user_text(self) -> str:
        """The text of the (first) user message."""
        content = self.body["messages"][0]["content"]
        if isinstance(content, list):
            return "\n".join(block.get("text", "") for block in content)
        return str(content)


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


class MessagesStub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Reply] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self.requests: list[Recorded] = []
        self.unscripted = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="anthropic-stub",
            daemon=True,
        )

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> MessagesStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping through a scripted delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MessagesStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ---------------------------------------------------------------------------

    def enqueue(
        self,
        status: int,
        body: bytes | object,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> MessagesStub:
        raw = body if isinstance(body, bytes) else _json(body)
        reply = Reply(status, raw, {"content-type": "application/json", **(headers or {})}, delay)
        with self._lock:
            self._queue.append(reply)
        return self

    def ok(
        self,
        findings: list[dict[str, object]] | None = None,
        explanation: str = "Sin observaciones adicionales.",
        *,
        input_tokens: int = 321,
        output_tokens: int = 45,
        model: str | None = None,
        delay: float = 0.0,
    ) -> MessagesStub:
        """A well-formed `report_findings` tool call."""
        tool_input = {"findings": findings or [], "explanation": explanation}
        return self.tool_input(
            tool_input,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=model,
            delay=delay,
        )

    def tool_input(
        self,
        tool_input: object,
        *,
        name: str = TOOL_NAME,
        input_tokens: int = 321,
        output_tokens: int = 45,
        model: str | None = None,
        delay: float = 0.0,
    ) -> MessagesStub:
        """A tool_use answer with exactly this `input` (which may be malformed on purpose)."""
        block = {"type": "tool_use", "id": "toolu_stub", "name": name, "input": tool_input}
        message = self._message([block], "tool_use", input_tokens, output_tokens, model)
        return self._enqueue_message(message, echo_model=model is None, delay=delay)

    def text_only(self, text: str = "No puedo usar la herramienta.") -> MessagesStub:
        """An answer with a text block and no tool call."""
        message = self._message([{"type": "text", "text": text}], "end_turn", 300, 20, None)
        return self._enqueue_message(message, echo_model=True)

    def invalid_json(self) -> MessagesStub:
        """A 200 whose body is cut off in the middle of the JSON."""
        return self.enqueue(200, b'{"id": "msg_stub", "type": "message", "content": [')

    def error(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> MessagesStub:
        """An error in the API's shape: {"type": "error", "error": {"type", "message"}}."""
        body = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": f"req_stub_{next(self._ids):04d}",
        }
        return self.enqueue(status, body, headers=headers)

    def rate_limited(
        self, *, retry_after: str = "0", retry_after_ms: str | None = None
    ) -> MessagesStub:
        headers = {"retry-after": retry_after}
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        return self.error(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
            headers=headers,
        )

    def server_error(self, status: int = 500) -> MessagesStub:
        return self.error(status, "api_error", "Internal server error")

    def overloaded(self) -> MessagesStub:
        return self.error(529, "overloaded_error", "Overloaded")

    def unauthorized(self) -> MessagesStub:
        return self.error(401, "authentication_error", "invalid x-api-key")

    def _enqueue_message(
        self, message: dict[str, object], *, echo_model: bool, delay: float = 0.0
    ) -> MessagesStub:
        reply = Reply(200, _json(message), {"content-type": "application/json"}, delay, echo_model)
        with self._lock:
            self._queue.append(reply)
        return self

    def _message(
        self,
        content: list[dict[str, object]],
        stop_reason: str,
        input_tokens: int,
        output_tokens: int,
        model: str | None,
    ) -> dict[str, object]:
        n = next(self._ids)
        for block in content:
            if block.get("type") == "tool_use":
                block["id"] = f"toolu_stub_{n:04d}"
        return {
            "id": f"msg_stub_{n:04d}",
            "type": "message",
            "role": "assistant",
            "model": model or "claude-stub",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }

    # --- serving -----------------------------------------------------------------------------

    def _next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if recorded.method != "POST" or recorded.path.split("?")[0] != "/v1/messages":
                body = {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": "Not found"},
                }
                return Reply(404, _json(body), {"content-type": "application/json"})
            if not self._queue:
                self.unscripted += 1
                body = {
                    "type": "error",
                    "error": {"type": "api_error", "message": "stub: no scripted response left"},
                }
                headers = {"content-type": "application/json", "x-should-retry": "false"}
                return Reply(500, _json(body), headers)
            reply = self._queue.pop(0)
        if reply.echo_model and isinstance(recorded.body, dict) and "model" in recorded.body:
            message = json.loads(reply.body)
            message["model"] = recorded.body["model"]
            reply = Reply(reply.status, _json(message), reply.headers, reply.delay)
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = stub._next_reply(Recorded(self.command, self.path, headers, body, raw))
                if reply.delay and stub._stopping.wait(min(reply.delay, MAX_DELAY)):
                    return  # the stub is shutting down
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("request-id", f"req_stub_{next(stub._ids):04d}")
                    self.send_header("content-length", str(len(reply.body)))
                    self.send_header("connection", "close")
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) before the delayed answer
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        return Handler
