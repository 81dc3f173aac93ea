"""Demo data so that the UI is alive on first run: one issuer, its users, partners, products
and a few drafts. Idempotent: running it again changes nothing that already exists."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from erp import services
from erp.models import (
    Company,
    Membership,
    Partner,
    Product,
    PurchaseDocument,
    Role,
    SalesDocument,
    SiiEnvironment,
)

DEMO_RUT = "76086428-5"
DEMO_NOTE = "Documento de demostración"

PARTNERS = [
    (
        "96790240-3",
        "Distribuidora Los Andes S.A.",
        "Venta al por mayor",
        "Av. Apoquindo 4501",
        "Las Condes",
        "Santiago",
        "dte@losandes.example",
    ),
    (
        "77001234-1",
        "Comercial Pacífico SpA",
        "Comercio minorista",
        "Blanco 1623",
        "Valparaíso",
        "Valparaíso",
        "facturas@pacifico.example",
    ),
    (
        "76543210-3",
        "Servicios Australes Ltda.",
        "Servicios informáticos",
        "Av. Colón 320",
        "Punta Arenas",
        "Punta Arenas",
        "intercambio@australes.example",
    ),
    (
        "12345678-5",
        "Juan Pérez González",
        "Profesional independiente",
        "Los Aromos 45",
        "Ñuñoa",
        "Santiago",
        "juan.perez@correo.example",
    ),
]
# A customer abroad, for export documents (110–112): RUT 55.555.555-5, its own identification
# and its country as an Aduana code (225: U.S.A.).
FOREIGN_CUSTOMER = {
    "rut": "55555555-5",
    "razon_social": "Pacific Fresh Imports LLC",
    "num_id": "US-EIN 12-3456789",
    "nacionalidad": "225",
    "direccion": "1200 Harbor Blvd",
    "ciudad": "Los Angeles",
    "email_dte": "invoices@pacificfresh.example",
}
PRODUCTS = [
    ("SERV-001", "Servicio de consultoría", "HR", Decimal("45000"), False),
    ("SOFT-LIC", "Licencia de software anual", "UN", Decimal("120000"), False),
    ("CAP-001", "Curso de capacitación (exento)", "UN", Decimal("80000"), True),
    ("PAP-500", "Resma papel carta 500 hojas", "UN", Decimal("4290"), False),
    ("TON-85A", "Tóner 85A compatible", "UN", Decimal("18990.5"), False),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


LOGINS = [
    DemoLogin("demo", "demo-factura", Role.ADMIN),
    DemoLogin("consulta", "demo-consulta", Role.VIEWER),
]


@transaction.atomic
def load_demo(*, today: date) -> list[DemoLogin]:
    company, _ = Company.objects.get_or_create(
        rut=DEMO_RUT,
        defaults={
            "razon_social": "Empresa Demo Facturación SpA",
            "giro": "Desarrollo de software y servicios de facturación electrónica",
            "actecos": [620200, 631200],
            "direccion": "Av. Providencia 1208, of. 1603",
            "comuna": "Providencia",
            "ciudad": "Santiago",
            "email": "contacto@demo.example",
            "resolution_number": 0,
            "resolution_date": date(2026, 1, 1),
            "sii_environment": (
                SiiEnvironment.SANDBOX
                if SiiEnvironment.SANDBOX in settings.SII_ENVIRONMENTS
                else SiiEnvironment.CERTIFICATION
            ),
        },
    )
    User = get_user_model()
    for login in LOGINS:
        user, created = User.objects.get_or_create(
            username=login.username, defaults={"is_staff": login.role == Role.ADMIN}
        )
        if created:
            user.set_password(login.password)
            user.save()
        Membership.objects.get_or_create(user=user, company=company, defaults={"role": login.role})

    if not Partner.objects.filter(company=company, rut=FOREIGN_CUSTOMER["rut"]).exists():
        services.partner_create(company=company, actor=None, data=FOREIGN_CUSTOMER)
    partners = {}
    for rut, name, giro, direccion, comuna, ciudad, email in PARTNERS:
        partner = Partner.objects.filter(company=company, rut=rut).first()
        if partner is None:
            partner = services.partner_create(
                company=company,
                actor=None,
                data={
                    "rut": rut,
                    "razon_social": name,
                    "giro": giro[:40],
                    "direccion": direccion,
                    "comuna": comuna,
                    "ciudad": ciudad,
                    "email_dte": email,
                },
            )
        partners[rut] = partner
    products = {}
    for code, name, unit, price, exempt in PRODUCTS:
        product = Product.objects.filter(company=company, code=code).first()
        if product is None:
            product = services.product_create(
                company=company,
                actor=None,
                data={
                    "code": code,
                    "name": name,
                    "unit": unit,
                    "unit_price": price,
                    "is_exempt": exempt,
                },
            )
        products[code] = product

    if not SalesDocument.objects.filter(company=company, notes=DEMO_NOTE).exists():
        _demo_documents(company, partners, products, today)
    if not PurchaseDocument.objects.filter(company=company, notes=DEMO_NOTE).exists():
        _demo_purchases(company, today)
    return LOGINS


def _line(product: Product, quantity: str, discount: str = "0") -> dict:
    return {"product": product.pk, "quantity": Decimal(quantity), "discount_pct": Decimal(discount)}


def _demo_documents(company, partners, products, today: date) -> None:
    andes, pacifico, australes = (partners[r] for r in ("96790240-3", "77001234-1", "76543210-3"))
    drafts = [
        {
            "tipo_dte": 33,
            "partner": andes.pk,
            "forma_pago": 2,
            "fecha_vencimiento": today + timedelta(days=30),
            "lines": [_line(products["SERV-001"], "12"), _line(products["SOFT-LIC"], "1", "10")],
        },
        {
            "tipo_dte": 33,
            "partner": pacifico.pk,
            "forma_pago": 1,
            "lines": [
                _line(products["PAP-500"], "20"),
                _line(products["TON-85A"], "3"),
                _line(products["CAP-001"], "1"),
            ],
            "global_discount_type": "%",
            "global_discount_value": Decimal("5"),
        },
        {
            "tipo_dte": 34,
            "partner": australes.pk,
            "forma_pago": 1,
            "lines": [_line(products["CAP-001"], "4")],
        },
        {
            "tipo_dte": 39,
            "partner": None,
            "forma_pago": 1,
            "lines": [_line(products["PAP-500"], "2")],
        },
        {
            "tipo_dte": 61,
            "partner": andes.pk,
            "forma_pago": 1,
            "lines": [_line(products["SERV-001"], "2")],
            "references": [
                {
                    "tipo_doc_ref": "33",
                    "folio_ref": "1",
                    "fecha_ref": today,
                    "cod_ref": 3,
                    "razon_ref": "Horas de consultoría cobradas de más",
                }
            ],
        },
    ]
    for data in drafts:
        services.sales_document_create(
            company=company,
            actor=None,
            data={"fecha_emision": today, "notes": DEMO_NOTE, **data},
        )


SUPPLIERS = (
    ("76354771-K", "Distribuidora Los Andes SpA"),
    ("60805000-0", "Servicio Nacional de Aduanas"),
    ("78044590-4", "Maquinarias del Pacífico SpA"),
)


def _demo_purchases(company, today: date) -> None:
    """A month of purchases, so that the F29 proposal has credits to show."""
    suppliers = {}
    for rut, name in SUPPLIERS:
        partner = Partner.objects.filter(company=company, rut=rut).first()
        suppliers[rut] = partner or services.partner_create(
            company=company,
            actor=None,
            data={"rut": rut, "razon_social": name, "is_customer": False, "is_supplier": True},
        )
    purchases = [
        ("76354771-K", 33, 10452, {"monto_neto": 1000000, "iva_recuperable": 190000}),
        ("76354771-K", 61, 2210, {"monto_neto": 100000, "iva_recuperable": 19000}),
        ("60805000-0", 914, 6240117, {"monto_neto": 2500000, "iva_recuperable": 475000}),
        (
            "78044590-4",
            33,
            7731,
            {"monto_neto": 8000000, "iva_recuperable": 1520000, "is_fixed_asset": True},
        ),
    ]
    for rut, tipo, folio, amounts in purchases:
        services.purchase_document_create(
            company=company,
            actor=None,
            data={
                "tipo_doc": tipo,
                "folio": folio,
                "partner": suppliers[rut].pk,
                "fecha": today.replace(day=1),
                "notes": DEMO_NOTE,
                **amounts,
            },
        )
