"""The sandbox's knobs: Django settings first, then the environment, then the default.

Read at call time (not import time), so tests can change them with pytest-django's `settings`.
"""

import os
from datetime import timedelta
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Status queries answered with an in-progress state before the final one (0: final at once).
    "SII_SANDBOX_POLLS_BEFORE_DONE": 1,
    # Seconds an envelope takes to be processed after its upload: until then QueryEstUp and the
    # boleta envío status answer in-progress states, and QueryEstDte and the boleta estado
    # answer FAU for its documents (0: processed at once).
    "SII_SANDBOX_PROCESSING_SECONDS": 0.0,
    # Seconds a "timeout" fault sleeps before answering (past the client's timeout).
    "SII_SANDBOX_TIMEOUT_SLEEP": 3.0,
    # Seconds a "slow" fault sleeps before answering normally (within the client's timeout).
    "SII_SANDBOX_SLOW_SLEEP": 1.0,
    # Whether DTEUpload's STATUS 99 (the same file again) carries the original's TRACKID. The
    # sources do not show either way (dte/sandbox/SII_BEHAVIOUR.md): a client must take both.
    "SII_SANDBOX_REPEAT_TRACKID": True,
    # Lifetimes, in seconds, of a seed (the SII: 2 minutes) and of a token.
    "SII_SANDBOX_SEED_TTL": 120,
    "SII_SANDBOX_TOKEN_TTL": 3600,
}
_FALSE = {"0", "false", "no", "off"}


def _setting(name: str) -> Any:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or DEFAULTS[name]
    return value


def _flag(name: str) -> bool:
    value = _setting(name)
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


def polls_before_done() -> int:
    return max(0, int(_setting("SII_SANDBOX_POLLS_BEFORE_DONE")))


def processing_time() -> timedelta:
    return timedelta(seconds=max(0.0, float(_setting("SII_SANDBOX_PROCESSING_SECONDS"))))


def timeout_sleep() -> float:
    return max(0.0, float(_setting("SII_SANDBOX_TIMEOUT_SLEEP")))


def slow_sleep() -> float:
    return max(0.0, float(_setting("SII_SANDBOX_SLOW_SLEEP")))


def repeat_track_id() -> bool:
    return _flag("SII_SANDBOX_REPEAT_TRACKID")


def seed_ttl() -> timedelta:
    return timedelta(seconds=float(_setting("SII_SANDBOX_SEED_TTL")))


def token_ttl() -> timedelta:
    return timedelta(seconds=float(_setting("SII_SANDBOX_TOKEN_TTL")))
