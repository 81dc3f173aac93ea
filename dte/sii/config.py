"""Which SII to talk to, from the settings (SII_ENV and the optional host overrides)."""

from dataclasses import replace
from functools import lru_cache

from django.conf import settings

from dte.sii.client import ENVIRONMENTS, Endpoints, SiiClient, sandbox_endpoints


def endpoints() -> Endpoints:
    if settings.SII_ENV == "sandbox":
        base = sandbox_endpoints(settings.SII_SANDBOX_URL)
    else:
        base = ENVIRONMENTS[settings.SII_ENV]
    overrides = {k: v for k, v in settings.SII_ENDPOINT_OVERRIDES.items() if v}
    return replace(base, **overrides) if overrides else base


@lru_cache(maxsize=8)
def _client(endpoints: Endpoints, timeout: float) -> SiiClient:
    return SiiClient(endpoints, timeout=timeout)


def client() -> SiiClient:
    """One client per process and configuration: zeep parses the WSDLs once (each request
    still gets its own connection, see OneRequestPerConnection)."""
    return _client(endpoints(), settings.SII_TIMEOUT)
