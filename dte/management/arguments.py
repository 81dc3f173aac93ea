"""What the dte commands share: the company named by --company (or --to), the member acting."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from erp.models import Company
from erp.rut import InvalidRut, normalize_rut
from erp.tenancy import Perm, role_allows


def company_by_rut(rut: str, *, flag: str = "--company") -> Company:
    try:
        company = Company.objects.filter(rut=normalize_rut(rut)).first()
    except InvalidRut as exc:
        raise CommandError(f"{flag}: {exc}") from exc
    if company is None:
        raise CommandError(f"{flag}: no company with RUT {rut}")
    return company


def member(username: str | None, company: Company, perm: Perm | None = None):
    """The user named by --user, who must belong to the company (and hold `perm` there);
    None when no user is named (the system acts)."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    membership = user.memberships.filter(company=company).first() if user else None
    if membership is None:
        raise CommandError(f"--user: {username} is not a member of {company.rut}")
    if perm is not None and not role_allows(membership.role, perm):
        raise CommandError(f"--user: {username} may not do this for {company.rut}")
    return user
