"""What each SII document type is: one registry every app reads. Pure: no Django.

Codes and rules from DOMAIN.md §5, §8, §12 and §15 (DTE_v10.xsd DOCType and DTEType,
EnvioBOLETA_v11.xsd, the RCV's document list, the F29's boxes). A module that needs a set of
types asks the registry (`codes(lambda d: d.cedible)`), never keeps its own list of codes.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum
from types import MappingProxyType

# --- The registry: every SII document type this system issues, receives, books or declares ---


class Envio(StrEnum):
    """The envelope a DTE travels in to the SII."""

    DTE = "EnvioDTE"  # EnvioDTE_v10.xsd, SOAP/HTTP upload
    BOLETA = "EnvioBOLETA"  # EnvioBOLETA_v11.xsd, the boleta REST API


class Family(StrEnum):
    """Documents of one family are compared with one another (duplicates, outliers)."""

    FACTURA = "factura"
    BOLETA = "boleta"
    GUIA = "guia"
    NOTA_DEBITO = "nota_debito"
    NOTA_CREDITO = "nota_credito"
    LIQUIDACION = "liquidacion"
    EXPORTACION = "exportacion"
    DIN = "din"

    @property
    def plural(self) -> str:
        return FAMILY_PLURALS[self]


FAMILY_PLURALS = {
    Family.FACTURA: "facturas",
    Family.BOLETA: "boletas",
    Family.GUIA: "guías de despacho",
    Family.NOTA_DEBITO: "notas de débito",
    Family.NOTA_CREDITO: "notas de crédito",
    Family.LIQUIDACION: "liquidaciones factura",
    Family.EXPORTACION: "documentos de exportación",
    Family.DIN: "declaraciones de ingreso",
}


class SalesBox(StrEnum):
    """How an issued document feeds the F29 (f29/calc.py reads these, box by box)."""

    FACTURAS = "503/502"  # count / IVA of facturas
    BOLETAS = "110/111"  # count / IVA of boletas
    NOTAS_CREDITO = "509/510"  # count / IVA of notas de crédito (subtracts)
    NOTAS_DEBITO = "512/513"  # count / IVA of notas de débito
    EXENTAS = "586"  # count of exempt documents
    EXENTO_SUMA = "142+"  # exempt amount, adds
    EXENTO_RESTA = "142-"  # exempt amount, subtracts
    EXPORTACIONES = "585"  # count of export invoices
    EXPORT_SUMA = "20+"  # export amount, adds
    EXPORT_RESTA = "20-"  # export amount, subtracts
    FACTURAS_COMPRA = "39"  # IVA retained by the buyer
    # count / IVA of the liquidaciones factura the comisionista issues: only its commission's
    # IVA is its débito (Reglamento DL 825 art. 22; dte/core/EXPORTS.md §6).
    LIQUIDACIONES = "500/501"


class PurchaseBox(StrEnum):
    """How a received document feeds the F29's credit."""

    FACTURAS = "519/520 524/525"  # del giro / activo fijo
    NOTAS_CREDITO = "527/528"
    NOTAS_DEBITO = "531/532"
    DIN = "534/535 536/553"


@dataclass(frozen=True, slots=True)
class DocType:
    """What one SII document type is. Codes and names from DTE_v10.xsd (DOCType, DTEType),
    EnvioBOLETA_v11.xsd and the RCV's document list; rules from DOMAIN.md §5–§15."""

    code: int
    name: str
    noun: str  # in a sentence, after "la" (every type's name is feminine): "factura exenta"
    electronic: bool = True
    family: Family = Family.FACTURA
    envio: Envio | None = Envio.DTE  # None: paper, or not sent to the SII as a DTE
    # DTE_v10.xsd's element under <DTE> and the SiiTypes_v10.xsd type of its TipoDTE:
    # Documento (DTEType), Liquidacion (LIQType), Exportaciones (EXPType); boletas are
    # EnvioBOLETA_v11.xsd's Documento.
    root: str = "Documento"
    gross_prices: bool = False  # boletas: prices with IVA included
    exempt_only: bool = False  # every line exempt: no MntNeto, no IVA
    caf_expires: bool = False  # the SII refuses a CAF older than 6 months
    receiver_details: bool = False  # GiroRecep, DirRecep, CmnaRecep mandatory
    receiver_optional: bool = False  # may go to 66666666-6
    requires_affected_line: bool = False  # at least one line with IVA
    retains_iva: bool = False  # the buyer retains the whole IVA (ImptoReten 15)
    cedible: bool = False  # printed with a copia cedible (Ley 19.983)
    rcv_detail: bool = True  # the RCV lists each document (not a daily summary, not absent)
    rcv_acceptance: bool = False  # the receiver accepts or claims it in the RCV (Ley 19.983)
    exchange_answer: bool = False  # answered to its issuer with RespuestaDTE / EnvioRecibos
    receivable: bool = False  # a supplier's DTE we take in
    note: bool = False  # modifies another document through a Referencia with CodRef
    foreign_currency: bool = False  # amounts in the operation's currency (TpoMoneda)
    max_lines: int = 60  # Detalle occurrences
    sales_boxes: frozenset[SalesBox] = frozenset()
    purchase_boxes: frozenset[PurchaseBox] = frozenset()
    purchase_book: bool = False  # may be booked as a purchase (the RCV's compras)

    @property
    def label(self) -> str:
        return self.name


S, P = SalesBox, PurchaseBox
_FACTURA_SALES = frozenset({S.FACTURAS, S.EXENTO_SUMA})
_EXENTA_SALES = frozenset({S.EXENTAS, S.EXENTO_SUMA})

# One row per type. Paper types (30…60) are booked from the RCV and declared in the F29; the
# electronic ones are issued here (TipoDte) or received from suppliers.
REGISTRY: Mapping[int, DocType] = MappingProxyType(
    {
        d.code: d
        for d in (
            DocType(
                30,
                "Factura",
                "factura",
                electronic=False,
                envio=None,
                sales_boxes=_FACTURA_SALES,
                purchase_boxes=frozenset({P.FACTURAS}),
                purchase_book=True,
            ),
            DocType(
                32,
                "Factura no afecta o exenta",
                "factura exenta",
                electronic=False,
                envio=None,
                exempt_only=True,
                sales_boxes=_EXENTA_SALES,
                purchase_book=True,
            ),
            DocType(
                33,
                "Factura electrónica",
                "factura",
                caf_expires=True,
                receiver_details=True,
                requires_affected_line=True,
                cedible=True,
                rcv_acceptance=True,
                exchange_answer=True,
                receivable=True,
                sales_boxes=_FACTURA_SALES,
                purchase_boxes=frozenset({P.FACTURAS}),
                purchase_book=True,
            ),
            DocType(
                34,
                "Factura no afecta o exenta electrónica",
                "factura exenta",
                exempt_only=True,
                receiver_details=True,
                cedible=True,
                rcv_acceptance=True,
                exchange_answer=True,
                receivable=True,
                sales_boxes=_EXENTA_SALES,
                purchase_book=True,
            ),
            DocType(
                35,
                "Boleta",
                "boleta",
                electronic=False,
                family=Family.BOLETA,
                envio=None,
                gross_prices=True,
                receiver_optional=True,
                rcv_detail=False,
                sales_boxes=frozenset({S.BOLETAS, S.EXENTO_SUMA}),
            ),
            DocType(
                38,
                "Boleta exenta",
                "boleta exenta",
                electronic=False,
                family=Family.BOLETA,
                envio=None,
                gross_prices=True,
                exempt_only=True,
                receiver_optional=True,
                rcv_detail=False,
                sales_boxes=_EXENTA_SALES,
            ),
            DocType(
                39,
                "Boleta electrónica",
                "boleta",
                family=Family.BOLETA,
                envio=Envio.BOLETA,
                gross_prices=True,
                receiver_optional=True,
                rcv_detail=False,
                max_lines=1000,
                sales_boxes=frozenset({S.BOLETAS, S.EXENTO_SUMA}),
            ),
            DocType(
                41,
                "Boleta exenta electrónica",
                "boleta exenta",
                family=Family.BOLETA,
                envio=Envio.BOLETA,
                gross_prices=True,
                exempt_only=True,
                receiver_optional=True,
                rcv_detail=False,
                max_lines=1000,
                sales_boxes=_EXENTA_SALES,
            ),
            DocType(
                43,
                "Liquidación factura electrónica",
                "liquidación factura",
                root="Liquidacion",
                family=Family.LIQUIDACION,
                caf_expires=True,
                cedible=True,  # DTEFacturasType: the types a cesión may carry
                receiver_details=True,
                rcv_acceptance=True,
                receivable=True,
                sales_boxes=frozenset({S.LIQUIDACIONES}),
            ),
            DocType(
                45,
                "Factura de compra",
                "factura de compra",
                electronic=False,
                envio=None,
                retains_iva=True,
                purchase_book=True,
            ),
            DocType(
                46,
                "Factura de compra electrónica",
                "factura de compra",
                caf_expires=True,
                cedible=True,  # DTEFacturasType; the SII's set asks for its cedible copy
                receiver_details=True,
                requires_affected_line=True,
                retains_iva=True,
                exchange_answer=True,
                receivable=True,
                sales_boxes=frozenset({S.FACTURAS_COMPRA}),
                purchase_boxes=frozenset({P.FACTURAS}),
                purchase_book=True,
            ),
            DocType(
                50,
                "Guía de despacho",
                "guía de despacho",
                electronic=False,
                family=Family.GUIA,
                envio=None,
                rcv_detail=False,
            ),
            DocType(
                52,
                "Guía de despacho electrónica",
                "guía de despacho",
                family=Family.GUIA,
                receiver_details=True,
                cedible=True,
                rcv_detail=False,
                exchange_answer=True,
                receivable=True,
            ),
            DocType(
                55,
                "Nota de débito",
                "nota de débito",
                electronic=False,
                family=Family.NOTA_DEBITO,
                envio=None,
                note=True,
                sales_boxes=frozenset({S.NOTAS_DEBITO, S.EXENTO_SUMA}),
                purchase_boxes=frozenset({P.NOTAS_DEBITO}),
                purchase_book=True,
            ),
            DocType(
                56,
                "Nota de débito electrónica",
                "nota de débito",
                family=Family.NOTA_DEBITO,
                caf_expires=True,
                receiver_details=True,
                note=True,
                exchange_answer=True,
                receivable=True,
                sales_boxes=frozenset({S.NOTAS_DEBITO, S.EXENTO_SUMA}),
                purchase_boxes=frozenset({P.NOTAS_DEBITO}),
                purchase_book=True,
            ),
            DocType(
                60,
                "Nota de crédito",
                "nota de crédito",
                electronic=False,
                family=Family.NOTA_CREDITO,
                envio=None,
                note=True,
                sales_boxes=frozenset({S.NOTAS_CREDITO, S.EXENTO_RESTA}),
                purchase_boxes=frozenset({P.NOTAS_CREDITO}),
                purchase_book=True,
            ),
            DocType(
                61,
                "Nota de crédito electrónica",
                "nota de crédito",
                family=Family.NOTA_CREDITO,
                caf_expires=True,
                receiver_details=True,
                note=True,
                exchange_answer=True,
                receivable=True,
                sales_boxes=frozenset({S.NOTAS_CREDITO, S.EXENTO_RESTA}),
                purchase_boxes=frozenset({P.NOTAS_CREDITO}),
                purchase_book=True,
            ),
            DocType(
                110,
                "Factura de exportación electrónica",
                "factura de exportación",
                root="Exportaciones",
                family=Family.EXPORTACION,
                exempt_only=True,
                foreign_currency=True,
                receivable=True,
                sales_boxes=frozenset({S.EXPORTACIONES, S.EXPORT_SUMA}),
            ),
            DocType(
                111,
                "Nota de débito de exportación electrónica",
                "nota de débito de exportación",
                root="Exportaciones",
                family=Family.EXPORTACION,
                exempt_only=True,
                foreign_currency=True,
                note=True,
                receivable=True,
                sales_boxes=frozenset({S.EXPORT_SUMA}),
            ),
            DocType(
                112,
                "Nota de crédito de exportación electrónica",
                "nota de crédito de exportación",
                root="Exportaciones",
                family=Family.EXPORTACION,
                exempt_only=True,
                foreign_currency=True,
                note=True,
                receivable=True,
                sales_boxes=frozenset({S.EXPORT_RESTA}),
            ),
            DocType(
                914,
                "Declaración de ingreso (DIN)",
                "declaración de ingreso",
                family=Family.DIN,
                envio=None,
                purchase_boxes=frozenset({P.DIN}),
                purchase_book=True,
            ),
        )
    }
)


def doc_type(code: int) -> DocType:
    """The registry's entry for a code; KeyError (in Spanish) for a code it does not know."""
    try:
        return REGISTRY[int(code)]
    except (KeyError, TypeError, ValueError):
        raise KeyError(f"Tipo de documento desconocido: {code!r}.") from None


def codes(predicate: Callable[[DocType], bool]) -> frozenset[int]:
    """The codes of the types for which `predicate` holds: `codes(lambda d: d.cedible)`."""
    return frozenset(code for code, spec in REGISTRY.items() if predicate(spec))


# TpoDocLiq of a liquidación factura's line for an advance or any other transaction (SII,
# Formato DTE; dte/core/EXPORTS.md §6); any other value is the liquidated document's type.
LIQUIDATED_OTHER = "99"


def liquidable(tipo_doc_liq: str) -> bool:
    """A TpoDocLiq this system accepts: a document type it knows, or 99."""
    code = tipo_doc_liq.strip()
    return code == LIQUIDATED_OTHER or (code.isdigit() and int(code) in REGISTRY)


def type_name(code: int) -> str:
    """The type's name, or "Tipo N" for a code the registry does not know (a reference)."""
    spec = REGISTRY.get(code)
    return spec.name if spec else f"Tipo {code}"


def liquidated_label(tipo_doc_liq: str) -> str:
    """A TpoDocLiq in words: "33 · Factura electrónica", "99 · Anticipos y otras operaciones"."""
    code = tipo_doc_liq.strip()
    if code == LIQUIDATED_OTHER:
        return f"{code} · Anticipos y otras operaciones"
    return f"{code} · {type_name(int(code))}" if code.isdigit() else code


class TipoDte(IntEnum):
    """The types this system issues; what each is comes from REGISTRY."""

    FACTURA = 33
    FACTURA_EXENTA = 34
    BOLETA = 39
    BOLETA_EXENTA = 41
    LIQUIDACION_FACTURA = 43
    FACTURA_COMPRA = 46
    GUIA_DESPACHO = 52
    NOTA_DEBITO = 56
    NOTA_CREDITO = 61
    FACTURA_EXPORTACION = 110
    NOTA_DEBITO_EXPORTACION = 111
    NOTA_CREDITO_EXPORTACION = 112

    @property
    def spec(self) -> DocType:
        return REGISTRY[self]  # an IntEnum hashes as its int; `.value` costs an enum lookup

    @property
    def label(self) -> str:
        return self.spec.name

    @property
    def exempt_only(self) -> bool:
        """Every line is exempt (34, 41): no MntNeto, no IVA."""
        return self.spec.exempt_only

    @property
    def gross_prices(self) -> bool:
        """Boletas carry prices with IVA included; net and IVA are derived from the total."""
        return self.spec.gross_prices

    @property
    def retains_iva(self) -> bool:
        """Factura de compra: the buyer retains the whole IVA (ImptoReten code 15)."""
        return self.spec.retains_iva

    @property
    def is_note(self) -> bool:
        return self.spec.note

    @property
    def requires_affected_line(self) -> bool:
        """The SII rejects a factura afecta (33) without a single affected line."""
        return self.spec.requires_affected_line

    @property
    def requires_receiver_details(self) -> bool:
        """The SII refuses these without the receiver's giro, dirección and comuna."""
        return self.spec.receiver_details

    @property
    def accepts_notes(self) -> bool:
        """Documents an "Emitir nota de crédito / débito" action starts from: facturas and the
        notas themselves (a nota de débito annuls a nota de crédito, and the reverse)."""
        families = (Family.FACTURA, Family.NOTA_DEBITO, Family.NOTA_CREDITO, Family.EXPORTACION)
        return self.spec.family in families and not self.spec.retains_iva

    @property
    def receiver_optional(self) -> bool:
        """Boletas may go to the anonymous receiver 66666666-6."""
        return self.spec.receiver_optional

    @property
    def is_export(self) -> bool:
        """Exports (110–112): amounts in the operation's currency, a receiver abroad."""
        return self.spec.foreign_currency

    @property
    def is_liquidacion(self) -> bool:
        """The liquidación-factura (43): liquidated sales by type, less the commissions."""
        return self.spec.root == "Liquidacion"

    @property
    def max_lines(self) -> int:
        """Detalle occurrences: 60 in DTE_v10.xsd, 1000 in EnvioBOLETA."""
        return self.spec.max_lines


ANONYMOUS_RECEIVER_RUT = "66666666-6"
# A receiver abroad has no RUT: exports carry this one, with Extranjero/NumId and Nacionalidad.
FOREIGN_RECEIVER_RUT = "55555555-5"

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
PURCHASE_TYPES: Mapping[int, str] = MappingProxyType(
    {code: REGISTRY[code].name for code in sorted(codes(lambda d: d.purchase_book))}
)

# Why VAT paid on a purchase is not recoverable ("Código IVA no recuperable" of the RCV).
IVA_NO_RECUPERABLE_CODES: dict[str, str] = {
    "1": "Compras destinadas a operaciones no gravadas o exentas",
    "2": "Facturas de proveedores registrados fuera de plazo",
    "3": "Gastos rechazados",
    "4": "Entregas gratuitas (premios, bonificaciones, etc.)",
    "9": "Otros",
}
