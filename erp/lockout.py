"""Login lockout (django-axes, configured in ops/settings.py): who the client is, and the Spanish
page a locked-out client gets instead of the login form (web login and /admin/login/)."""

import math

from django.db.models import Max
from django.shortcuts import render
from django.utils import timezone
from rest_framework.throttling import BaseThrottle


def client_ip(request) -> str | None:
    """The client's address, by the same rule as the API throttles (DRF's NUM_PROXIES, set from
    TRUSTED_PROXY_COUNT): the direct peer, or the address the outermost trusted proxy appended
    to X-Forwarded-For."""
    return BaseThrottle().get_ident(request)


def lockout_response(request, original_response=None, credentials=None):
    """HTTP 429 with the time the lockout ends, in Spanish, and Retry-After in seconds."""
    from axes.helpers import get_client_username, get_cool_off, get_failure_limit
    from axes.models import AccessAttempt

    now = timezone.now()
    cool_off = get_cool_off(request)
    context = {"failure_limit": get_failure_limit(request, credentials), "until": None}
    response_headers = {}
    if cool_off:
        # The lockout runs from the last failure that counted (a try during the lockout does not
        # extend it: AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT is off).
        last = AccessAttempt.objects.filter(
            username=get_client_username(request, credentials),
            ip_address=getattr(request, "axes_ip_address", None),
        ).aggregate(last=Max("attempt_time"))["last"]
        until = (last or now) + cool_off
        wait = max(1, math.ceil((until - now).total_seconds()))
        context.update(until=until, minutes=max(1, math.ceil(wait / 60)))
        response_headers["Retry-After"] = str(wait)
    response = render(request, "registration/locked_out.html", context, status=429)
    for name, value in response_headers.items():
        response[name] = value
    return response
