"""The web UI's view of tenancy: which company the signed-in user is working in."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import render

from erp import errors, tenancy
from erp.models import Membership

SESSION_KEY = "company_id"


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership chosen in the company switcher, or the user's first one."""
    if hasattr(request, "_membership"):
        return request._membership
    membership = None
    if request.user.is_authenticated:
        memberships = tenancy.memberships_for(request.user).order_by("company__razon_social")
        chosen = request.session.get(SESSION_KEY)
        membership = (memberships.filter(company_id=chosen).first() if chosen else None) or (
            memberships.first()
        )
    request._membership = membership
    return membership


def company_view(perm: tenancy.Perm = tenancy.Perm.VIEW) -> Callable:
    """Resolve the current company and check the role; the view gets `membership`."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = current_membership(request)
            if membership is None:
                return render(request, "erp/no_company.html", status=403)
            if not tenancy.role_allows(membership.role, perm):
                raise DjangoPermissionDenied("Su rol no permite esta acción.")
            try:
                return view(request, membership, *args, **kwargs)
            except errors.NotFound as exc:
                raise Http404(exc.message) from exc
            except errors.PermissionDenied as exc:
                raise DjangoPermissionDenied(exc.message) from exc

        return wrapper

    return decorator
