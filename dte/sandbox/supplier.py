"""A make-believe supplier for the offline flow: its own certificate and CAFs (signed by the
sandbox SII's key, IDK 900), and signed EnvioDTEs addressed to one of our companies, exactly as
a real supplier's system would mail them to the company's exchange mailbox.

Pure apart from key generation: nothing here touches the database; the caller registers the
documents at the sandbox SII (dte.sandbox.operations) and delivers the envelope (mail, file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from dte.core.caf import Caf, parse_caf
from dte.core.certificate import Certificate, load_pkcs12
from dte.core.domain import Documento, Emisor, Linea, Receptor, Referencia, Resolucion
from dte.core.envelope import EnvelopeItem, build_envelope
from dte.core.issue import stamp_and_sign
from dte.core.testmaterial import SANDBOX_IDK, make_caf, make_test_certificate
from erp.doctypes import TipoDte

SUPPLIER_RUT = "77123456-9"
SUPPLIER_SIGNER_RUT = "15432876-9"
_PASSWORD = "proveedor"


def default_supplier() -> Emisor:
    return Emisor(
        rut=SUPPLIER_RUT,
        razon_social="Proveedora Austral de Insumos SpA",
        giro="Venta al por mayor de insumos de oficina",
        actecos=(466301,),
        direccion="Av. Los Carrera 1550",
        comuna="Concepción",
        ciudad="Concepción",
        correo="dte@proveedora-austral.cl",
    )


@dataclass
class Supplier:
    """A supplier's signing material: one certificate, and one CAF per type on first use."""

    emisor: Emisor
    sii_key: RSAPrivateKey
    now: datetime  # timezone-aware
    resolucion: Resolucion = field(default_factory=lambda: Resolucion(date(2019, 4, 1), 0))
    certificate: Certificate = field(init=False)
    cafs: dict[int, Caf] = field(default_factory=dict)
    next_folio: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = self.now
        pfx = make_test_certificate(
            rut=SUPPLIER_SIGNER_RUT,
            holder_name="FIRMANTE PROVEEDOR DE PRUEBA",
            password=_PASSWORD,
            not_before=now - timedelta(days=30),
            not_after=now + timedelta(days=365),
        )
        self.certificate = load_pkcs12(pfx, _PASSWORD)

    def caf(self, tipo: int, *, first_folio: int = 1, size: int = 10_000) -> Caf:
        if tipo not in self.cafs:
            self.cafs[tipo] = parse_caf(
                make_caf(
                    sii_key=self.sii_key,
                    idk=SANDBOX_IDK,
                    rut_emisor=self.emisor.rut,
                    razon_social=self.emisor.razon_social,
                    tipo_dte=tipo,
                    folio_desde=first_folio,
                    folio_hasta=first_folio + size - 1,
                    fecha_autorizacion=self.now.date() - timedelta(days=10),
                )
            )
            self.next_folio[tipo] = first_folio
        return self.cafs[tipo]


@dataclass(frozen=True)
class SuppliedDocument:
    tipo: int
    folio: int
    fecha_emision: date
    monto_total: int
    xml: str  # the signed DTE


def default_lines(n: int) -> tuple[Linea, ...]:
    return (
        Linea("Resma papel carta 75 g", Decimal(10 + n % 5), Decimal(4290), unidad="UN"),
        Linea("Tóner láser negro", Decimal(2), Decimal(38900), Decimal(5), unidad="UN"),
    )


def supply(
    supplier: Supplier,
    receptor: Receptor,
    *,
    count: int = 1,
    tipo: int = 33,
    now: datetime,
    lines: Sequence[Linea] | None = None,
    referencias: Sequence[Referencia] = (),
) -> list[SuppliedDocument]:
    """`count` signed DTEs of `tipo` from the supplier to `receptor`, with consecutive folios."""
    caf = supplier.caf(tipo)
    documents: list[SuppliedDocument] = []
    for n in range(count):
        folio = supplier.next_folio[tipo]
        supplier.next_folio[tipo] = folio + 1
        documento = Documento(
            tipo=TipoDte(tipo),
            folio=folio,
            fecha_emision=now.date(),
            emisor=supplier.emisor,
            receptor=receptor,
            lineas=tuple(lines) if lines is not None else default_lines(n),
            referencias=tuple(referencias),
            forma_pago=2,
            fecha_vencimiento=now.date() + timedelta(days=30),
        )
        issued = stamp_and_sign(documento, caf=caf, signer=supplier.certificate, now=now)
        documents.append(
            SuppliedDocument(
                tipo, folio, documento.fecha_emision, documento.totales.monto_total, issued.xml
            )
        )
    return documents


def envelope_for(
    supplier: Supplier, documents: Sequence[SuppliedDocument], *, rut_receptor: str, now: datetime
) -> bytes:
    """The signed EnvioDTE the supplier mails to the receiver (RutReceptor = the receiver)."""
    return build_envelope(
        [EnvelopeItem(TipoDte(d.tipo), d.xml) for d in documents],
        rut_emisor=supplier.emisor.rut,
        rut_envia=SUPPLIER_SIGNER_RUT,
        resolucion=supplier.resolucion,
        timestamp=now,
        key=supplier.certificate,
        rut_receptor=rut_receptor,
    )
