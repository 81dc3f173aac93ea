"""API throttles (DRF): per authenticated user and per anonymous client address.

The rates are read from the settings on each request (API_THROTTLE_USER, API_THROTTLE_ANON:
"600/min"; None turns one off), not frozen when DRF is imported; the counters live in the
default cache (Redis with REDIS_URL), keyed by user id or by the client's address
(TRUSTED_PROXY_COUNT, through DRF's NUM_PROXIES)."""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

COUNTED = "_erp_throttles_counted"


def counted(request) -> bool:
    """Whether this request already went through the throttles (erp.api.errors counts a request
    refused before DRF reached them: no credentials, a bad token, no permission)."""
    return bool(getattr(request, COUNTED, False))


class _RateFromSettings:
    setting = ""

    def get_rate(self):
        return getattr(settings, self.setting, None) or None

    def allow_request(self, request, view):
        setattr(request, COUNTED, True)
        return super().allow_request(request, view)


class AnonThrottle(_RateFromSettings, AnonRateThrottle):
    setting = "API_THROTTLE_ANON"


class UserThrottle(_RateFromSettings, UserRateThrottle):
    setting = "API_THROTTLE_USER"
