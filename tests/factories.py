from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from erp.models import (
    Company,
    DocumentState,
    Membership,
    Partner,
    Product,
    Role,
    SalesDocument,
    SalesDocumentLine,
)
from erp.rut import check_digit


def rut_from(n: int) -> str:
    body = 10_000_000 + n
    return f"{body}-{check_digit(body)}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "clave-secreta-1")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("rut",)

    rut = factory.Sequence(lambda n: rut_from(5000 + n))
    razon_social = factory.Sequence(lambda n: f"Empresa {n} SpA")
    giro = "Servicios informáticos"
    actecos = [620200]
    direccion = "Av. Siempre Viva 742"
    comuna = "Santiago"
    ciudad = "Santiago"
    resolution_number = 80
    resolution_date = date(2014, 8, 22)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    company = factory.SubFactory(CompanyFactory)
    role = Role.CLERK


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    company = factory.SubFactory(CompanyFactory)
    rut = factory.Sequence(lambda n: rut_from(n))
    razon_social = factory.Sequence(lambda n: f"Cliente {n} Ltda.")
    giro = "Comercio"
    direccion = "Calle 1"
    comuna = "Providencia"
    ciudad = "Santiago"
    email_dte = factory.Sequence(lambda n: f"dte{n}@cliente.example")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    company = factory.SubFactory(CompanyFactory)
    code = factory.Sequence(lambda n: f"P-{n:04d}")
    name = factory.Sequence(lambda n: f"Producto {n}")
    unit = "UN"
    unit_price = Decimal("1000")


class SalesDocumentFactory(factory.django.DjangoModelFactory):
    """A stored document as it would be after the service wrote it (totals included)."""

    class Meta:
        model = SalesDocument
        skip_postgeneration_save = True

    company = factory.SubFactory(CompanyFactory)
    tipo_dte = 33
    state = DocumentState.DRAFT
    fecha_emision = date(2026, 11, 2)
    partner = factory.SubFactory(PartnerFactory, company=factory.SelfAttribute("..company"))
    monto_neto = 1000
    tasa_iva = 19
    iva = 190
    monto_total = 1190

    @factory.post_generation
    def line(obj, create, extracted, **kwargs):
        if create:
            SalesDocumentLine.objects.create(
                document=obj,
                line_number=1,
                name="Servicio",
                quantity=Decimal(1),
                unit_price=Decimal(1000),
                amount=1000,
            )
