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
    # Seconds a "timeout" fault sleeps before answering.
    "SII_SANDBOX_TIMEOUT_SLEEP": 3.0,
    # Lifetimes, in seconds, of a seed (the SII: 2 minutes) and of a token.
    "SII_SANDBOX_SEED_TTL": 120,
    "SII_SANDBOX_TOKEN_TTL": 3600,
}


def _setting(name: str) -> Any:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or DEFAULTS[name]
    return value


def polls_before_done() -> int:
    return max(0, int(_setting("SII_SANDBOX_POLLS_BEFORE_DONE")))


def timeout_sleep() -> float:
    return max(0.0, float(_setting("SII_SANDBOX_TIMEOUT_SLEEP")))


def seed_ttl() -> timedelta:
    return timedelta(seconds=float(_setting("SII_SANDBOX_SEED_TTL")))


def token_ttl() -> timedelta:
    return timedelta(seconds=float(_setting("SII_SANDBOX_TOKEN_TTL")))
