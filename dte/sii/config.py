"""Which SII a company talks to: its environment's hosts (Company.sii_environment), or the
local sandbox, with the optional overrides from the settings. The deployment allows some
environments (SII_ENVIRONMENTS); a company in another one cannot send."""

from dataclasses import replace
from functools import lru_cache

from django.conf import settings

from dte.sii.client import ENVIRONMENTS, Endpoints, SiiClient, sandbox_endpoints

STAND_IN_SETTINGS = {"certification": "SII_CERTIFICATION_URL", "production": "SII_PRODUCTION_URL"}


class EnvironmentNotAllowed(ValueError):
    """The company's SII environment is not one this deployment talks to."""

    def __init__(self, env: str) -> None:
        allowed = ", ".join(settings.SII_ENVIRONMENTS)
        super().__init__(
            f"El ambiente SII «{env}» no está habilitado en esta instalación "
            f"(SII_ENVIRONMENTS: {allowed})."
        )


def endpoints(env: str) -> Endpoints:
    if env not in settings.SII_ENVIRONMENTS:
        raise EnvironmentNotAllowed(env)
    if env == "sandbox":
        return sandbox_endpoints(settings.SII_SANDBOX_URL)
    stand_in = getattr(settings, STAND_IN_SETTINGS[env], "")
    base = sandbox_endpoints(stand_in) if stand_in else ENVIRONMENTS[env]
    overrides = {k: v for k, v in settings.SII_ENDPOINT_OVERRIDES.items() if v}
    return replace(base, **overrides) if overrides else base


@lru_cache(maxsize=8)
def _client(endpoints: Endpoints, timeout: float) -> SiiClient:
    return SiiClient(endpoints, timeout=timeout)


def client(env: str) -> SiiClient:
    """One client per process and environment: zeep parses the WSDLs once (each request still
    gets its own connection, see OneRequestPerConnection)."""
    return _client(endpoints(env), settings.SII_TIMEOUT)
