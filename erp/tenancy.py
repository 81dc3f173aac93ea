"""The one place that decides which companies a user may see and what their role lets them do.

Every door (web views, the API, Django admin) goes through these functions; nothing else filters
by membership. A company the user does not belong to is reported as not found, never as
forbidden, so that its existence does not leak.
"""

from enum import StrEnum
from typing import TypeVar

from django.db.models import Model, QuerySet

from erp.errors import NotFound, PermissionDenied
from erp.models import Company, Membership, Role
from erp.rut import InvalidRut, normalize_rut

M = TypeVar("M", bound=Model)


class Perm(StrEnum):
    VIEW = "view"
    EDIT_MASTER_DATA = "edit_master_data"  # partners, products
    EDIT_DOCUMENTS = "edit_documents"  # drafts
    ISSUE_DOCUMENTS = "issue_documents"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_CREDENTIALS = "manage_credentials"  # certificates and CAFs
    PREPARE_TAX = "prepare_tax"  # RCV imports, computing the F29 draft
    FILE_TAX = "file_tax"  # review, file and reopen the F29
    RECEIVE_DOCUMENTS = "receive_documents"  # take in suppliers' DTEs, accept or claim them


_WRITERS = frozenset({Role.ADMIN, Role.ACCOUNTANT, Role.CLERK})
ROLE_PERMS: dict[Perm, frozenset[str]] = {
    Perm.VIEW: frozenset(Role.values),
    Perm.EDIT_MASTER_DATA: _WRITERS,
    Perm.EDIT_DOCUMENTS: _WRITERS,
    Perm.ISSUE_DOCUMENTS: _WRITERS,
    Perm.MANAGE_MEMBERS: frozenset({Role.ADMIN}),
    Perm.MANAGE_CREDENTIALS: frozenset({Role.ADMIN}),
    Perm.PREPARE_TAX: _WRITERS,
    Perm.FILE_TAX: frozenset({Role.ADMIN, Role.ACCOUNTANT}),
    Perm.RECEIVE_DOCUMENTS: _WRITERS,
}


def role_allows(role: str, perm: Perm) -> bool:
    return role in ROLE_PERMS[perm]


def companies_for(user) -> QuerySet[Company]:
    if not user.is_authenticated:
        return Company.objects.none()
    return Company.objects.filter(memberships__user=user).distinct()


def companies_with_perm(user, perm: Perm) -> QuerySet[Company]:
    """The companies where the user's role grants `perm` (what admin forms offer to act on);
    every company for a superuser."""
    if not user.is_authenticated:
        return Company.objects.none()
    if user.is_superuser:
        return Company.objects.all()
    return Company.objects.filter(
        memberships__user=user, memberships__role__in=ROLE_PERMS[perm]
    ).distinct()


def memberships_for(user) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("company")


def membership_for(user, *, company_id: int | None = None, rut: str | None = None) -> Membership:
    """The user's membership in one company, found by id or RUT; NotFound if they have none."""
    qs = memberships_for(user)
    if rut is not None:
        try:
            qs = qs.filter(company__rut=normalize_rut(rut))
        except InvalidRut as exc:
            raise NotFound("Empresa no encontrada.") from exc
    elif company_id is not None:
        qs = qs.filter(company_id=company_id)
    else:
        raise NotFound("Empresa no encontrada.")
    membership = qs.first()
    if membership is None:
        raise NotFound("Empresa no encontrada.")
    return membership


def require(membership: Membership, perm: Perm) -> None:
    if not role_allows(membership.role, perm):
        raise PermissionDenied()


def scoped(queryset: QuerySet[M], company: Company) -> QuerySet[M]:
    """Rows of one company. Every model with tenant data has a `company` foreign key."""
    return queryset.filter(company=company)


def scoped_for_user(queryset: QuerySet[M], user, *, path: str = "company") -> QuerySet[M]:
    """Rows of every company the user belongs to (admin lists); superusers see all."""
    if user.is_superuser:
        return queryset
    return queryset.filter(**{f"{path}__memberships__user": user}).distinct()


def user_can_in_object_company(user, company_id: int, perm: Perm) -> bool:
    if user.is_superuser:
        return True
    role = (
        Membership.objects.filter(user=user, company_id=company_id)
        .values_list("role", flat=True)
        .first()
    )
    return role is not None and role_allows(role, perm)


def user_has_perm_anywhere(user, perm: Perm) -> bool:
    """Whether some membership of the user grants `perm` (admin menus, add buttons)."""
    if user.is_superuser:
        return True
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    return any(role_allows(role, perm) for role in roles)
