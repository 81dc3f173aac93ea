"""A request id that follows the work: taken from the proxy's X-Request-ID (or made here), put
on every log line of the request, returned in the response, and carried in the headers of every
Celery task the request queues, so a document's issue, its upload to the SII, its PDF and its
review log under one id. Logs are JSON lines (`LOG_FORMAT=json`, the default outside DEBUG)."""

import contextvars
import json
import logging
import os
import re
import uuid

from celery import signals

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
HEADER = "X-Request-ID"
_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(HEADER, "")
        request_id = incoming if _SAFE.match(incoming) else new_id()
        token = REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response[HEADER] = request_id
        return response


class ColourMiddleware:
    """X-App-Colour: the blue/green colour that answered (settings.APP_COLOUR), when set."""

    HEADER = "X-App-Colour"

    def __init__(self, get_response):
        from django.conf import settings

        self.colour = settings.APP_COLOUR
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self.colour:
            response[self.HEADER] = self.colour
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the blue/green
    colour of the container (APP_COLOUR, when set), and the exception."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.colour = os.environ.get("APP_COLOUR", "").strip()

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
        }
        if self.colour:
            entry["colour"] = self.colour
        task = getattr(record, "task_name", None)
        if task:
            entry["task"] = task
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# ---------------------------------------------------------------- Celery


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **kwargs) -> None:
    request_id = REQUEST_ID.get()
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id


_TOKENS: dict[str, contextvars.Token] = {}


@signals.task_prerun.connect
def _adopt_request_id(task_id=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    carried = getattr(request, "request_id", None) or (
        (getattr(request, "headers", None) or {}).get("request_id")
    )
    # A worker adopts the id the task carries; an eager task (same thread) keeps the caller's.
    _TOKENS[task_id] = REQUEST_ID.set(carried or REQUEST_ID.get() or new_id())


@signals.task_postrun.connect
def _forget_request_id(task_id=None, **kwargs) -> None:
    token = _TOKENS.pop(task_id, None)
    if token is not None:
        try:
            REQUEST_ID.reset(token)
        except ValueError:  # set in another context (a pool switched threads): just clear
            REQUEST_ID.set("")
