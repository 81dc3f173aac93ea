"""The SII document types this system issues, and what each implies. Pure: no Django.

Codes and rules from DOMAIN.md §5 and §8 (DTE_v10.xsd DOCType, EnvioBOLETA_v11.xsd).
"""

from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum


class TipoDte(IntEnum):
    FACTURA = 33
    FACTURA_EXENTA = 34
    BOLETA = 39
    BOLETA_EXENTA = 41
    FACTURA_COMPRA = 46
    GUIA_DESPACHO = 52
    NOTA_DEBITO = 56
    NOTA_CREDITO = 61

    @property
    def label(self) -> str:
        return LABELS[self]

    @property
    def exempt_only(self) -> bool:
        """Every line is exempt (34, 41): no MntNeto, no IVA."""
        return self in (TipoDte.FACTURA_EXENTA, TipoDte.BOLETA_EXENTA)

    @property
    def gross_prices(self) -> bool:
        """Boletas carry prices with IVA included; net and IVA are derived from the total."""
        return self in (TipoDte.BOLETA, TipoDte.BOLETA_EXENTA)

    @property
    def retains_iva(self) -> bool:
        """Factura de compra: the buyer retains the whole IVA (ImptoReten code 15)."""
        return self is TipoDte.FACTURA_COMPRA

    @property
    def is_note(self) -> bool:
        return self in (TipoDte.NOTA_DEBITO, TipoDte.NOTA_CREDITO)

    @property
    def requires_affected_line(self) -> bool:
        """The SII rejects a factura afecta (33) without a single affected line."""
        return self in (TipoDte.FACTURA, TipoDte.FACTURA_COMPRA)

    @property
    def requires_receiver_details(self) -> bool:
        """The SII refuses these without the receiver's giro, dirección and comuna."""
        return self in (
            TipoDte.FACTURA,
            TipoDte.FACTURA_EXENTA,
            TipoDte.FACTURA_COMPRA,
            TipoDte.GUIA_DESPACHO,
            TipoDte.NOTA_DEBITO,
            TipoDte.NOTA_CREDITO,
        )

    @property
    def accepts_notes(self) -> bool:
        """Documents an "Emitir nota de crédito / débito" action starts from: facturas and the
        notas themselves (a nota de débito annuls a nota de crédito, and the reverse)."""
        return self in (
            TipoDte.FACTURA,
            TipoDte.FACTURA_EXENTA,
            TipoDte.NOTA_DEBITO,
            TipoDte.NOTA_CREDITO,
        )

    @property
    def receiver_optional(self) -> bool:
        """Boletas may go to the anonymous receiver 66666666-6."""
        return self.gross_prices

    @property
    def max_lines(self) -> int:
        """Detalle occurrences: 60 in DTE_v10.xsd, 1000 in EnvioBOLETA."""
        return 1000 if self.gross_prices else 60


LABELS = {
    TipoDte.FACTURA: "Factura electrónica",
    TipoDte.FACTURA_EXENTA: "Factura no afecta o exenta electrónica",
    TipoDte.BOLETA: "Boleta electrónica",
    TipoDte.BOLETA_EXENTA: "Boleta exenta electrónica",
    TipoDte.FACTURA_COMPRA: "Factura de compra electrónica",
    TipoDte.GUIA_DESPACHO: "Guía de despacho electrónica",
    TipoDte.NOTA_DEBITO: "Nota de débito electrónica",
    TipoDte.NOTA_CREDITO: "Nota de crédito electrónica",
}

ANONYMOUS_RECEIVER_RUT = "66666666-6"

# IVA rate in percent (TasaIVA in the XSD).
TASA_IVA = 19


def catalog_price(net: Decimal, tipo: "TipoDte | None", *, exempt: bool) -> Decimal:
    """A product's price on a document line. The catalogue keeps net prices; a boleta's lines
    carry prices with IVA included, in whole pesos (what the customer sees on the shelf)."""
    if tipo is None or not tipo.gross_prices or exempt:
        return net
    gross = net * (100 + TASA_IVA) / 100
    return gross.quantize(Decimal(1), rounding=ROUND_HALF_UP)


class CodRef(IntEnum):
    """Referencia/CodRef for notas 56 and 61."""

    ANULA = 1
    CORRIGE_TEXTO = 2
    CORRIGE_MONTOS = 3


class IndTraslado(IntEnum):
    """IdDoc/IndTraslado of a guía de despacho: why the goods move (DTE_v10.xsd)."""

    VENTA = 1
    VENTA_POR_EFECTUAR = 2
    CONSIGNACION = 3
    PROMOCION_DONACION = 4
    TRASLADO_INTERNO = 5
    OTROS_TRASLADOS = 6
    DEVOLUCION = 7
    TRASLADO_EXPORTACION = 8
    VENTA_EXPORTACION = 9

    @property
    def label(self) -> str:
        return IND_TRASLADO_LABELS[self]

    @property
    def receiver_is_issuer(self) -> bool:
        """The goods stay with the emisor: the receptor is the emisor itself (XSD: 4 and 5)."""
        return self in (IndTraslado.PROMOCION_DONACION, IndTraslado.TRASLADO_INTERNO)

    @property
    def is_sale(self) -> bool:
        """Guías a factura is issued for later ("Facturar guías")."""
        return self is IndTraslado.VENTA


IND_TRASLADO_LABELS = {
    IndTraslado.VENTA: "Operación constituye venta",
    IndTraslado.VENTA_POR_EFECTUAR: "Venta por efectuar",
    IndTraslado.CONSIGNACION: "Consignación",
    IndTraslado.PROMOCION_DONACION: "Entrega gratuita (promoción o donación)",
    IndTraslado.TRASLADO_INTERNO: "Traslado interno",
    IndTraslado.OTROS_TRASLADOS: "Otros traslados que no constituyen venta",
    IndTraslado.DEVOLUCION: "Guía de devolución",
    IndTraslado.TRASLADO_EXPORTACION: "Traslado para exportación (no venta)",
    IndTraslado.VENTA_EXPORTACION: "Venta para exportación",
}


class TipoDespacho(IntEnum):
    """IdDoc/TipoDespacho: who carries the goods, and where."""

    POR_CUENTA_DEL_RECEPTOR = 1
    EMISOR_A_INSTALACIONES_DEL_RECEPTOR = 2
    EMISOR_A_OTRAS_INSTALACIONES = 3


TIPO_DESPACHO_LABELS = {
    TipoDespacho.POR_CUENTA_DEL_RECEPTOR: "Por cuenta del receptor",
    TipoDespacho.EMISOR_A_INSTALACIONES_DEL_RECEPTOR: "Emisor a instalaciones del receptor",
    TipoDespacho.EMISOR_A_OTRAS_INSTALACIONES: "Emisor a otras instalaciones",
}


class FormaPago(IntEnum):
    CONTADO = 1
    CREDITO = 2
    SIN_COSTO = 3


# Documents received from suppliers (and customs), as the SII's purchase register names them.
PURCHASE_TYPES: dict[int, str] = {
    30: "Factura",
    32: "Factura no afecta o exenta",
    33: "Factura electrónica",
    34: "Factura no afecta o exenta electrónica",
    45: "Factura de compra",
    46: "Factura de compra electrónica",
    55: "Nota de débito",
    56: "Nota de débito electrónica",
    60: "Nota de crédito",
    61: "Nota de crédito electrónica",
    914: "Declaración de ingreso (DIN)",
}

# Why VAT paid on a purchase is not recoverable ("Código IVA no recuperable" of the RCV).
IVA_NO_RECUPERABLE_CODES: dict[str, str] = {
    "1": "Compras destinadas a operaciones no gravadas o exentas",
    "2": "Facturas de proveedores registrados fuera de plazo",
    "3": "Gastos rechazados",
    "4": "Entregas gratuitas (premios, bonificaciones, etc.)",
    "9": "Otros",
}
