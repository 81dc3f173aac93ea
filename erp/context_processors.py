from erp import tenancy
from erp.web import current_membership


def current_company(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    membership = current_membership(request)
    return {
        "membership": membership,
        "company": membership.company if membership else None,
        "my_memberships": tenancy.memberships_for(request.user).order_by("company__razon_social"),
        "can_edit": bool(
            membership and tenancy.role_allows(membership.role, tenancy.Perm.EDIT_DOCUMENTS)
        ),
        "can_prepare_tax": bool(
            membership and tenancy.role_allows(membership.role, tenancy.Perm.PREPARE_TAX)
        ),
        "can_file_tax": bool(
            membership and tenancy.role_allows(membership.role, tenancy.Perm.FILE_TAX)
        ),
    }
