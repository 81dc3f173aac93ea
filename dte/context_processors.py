from django.utils import timezone

from dte import selectors
from erp.tenancy import Perm, role_allows
from erp.web import current_membership


def dte_warnings(request):
    """Folio and certificate warnings for the company being worked on (admins act on them)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    membership = current_membership(request)
    if membership is None:
        return {}
    return {
        "dte_warnings": selectors.dte_warnings(
            company=membership.company, now=timezone.now(), today=timezone.localdate()
        ),
        "can_issue": role_allows(membership.role, Perm.ISSUE_DOCUMENTS),
        "can_manage_credentials": role_allows(membership.role, Perm.MANAGE_CREDENTIALS),
    }
