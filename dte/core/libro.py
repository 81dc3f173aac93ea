"""The SII's libros, as certification asks for them (DOMAIN.md §16; the rules and their sources
are in dte/core/CERTIFICATION.md, "Libros (IECV and guías)").

- `build_libro_compra_venta`: `LibroCompraVenta` (LibroCV_v10.xsd), the Información Electrónica
  de Compras (TipoOperacion COMPRA) or de Ventas (VENTA).
- `build_libro_guia`: `LibroGuia` (LibroGuia_v10.xsd), the libro de guías de despacho.

Each returns the signed document as ISO-8859-1 bytes with the XML declaration: Caratula, a
ResumenPeriodo computed from the rows, one Detalle per row in the schema's element order, and
TmstFirma inside `EnvioLibro`, whose XML-DSig signature is the root's last child.

Amounts are whole pesos (int), rates Decimal; the IVA of a row is round(neto × tasa / 100) half
up unless the row says otherwise. Only a TOTAL envío is built: PARCIAL, FINAL and AJUSTE need
the totals of envíos this module never sees.

Signing follows DOMAIN.md §9 as envelope.py and exchange.py do: EnvioLibro is written in its
canonical form from the start, its digest is taken over its inclusive C14N inside the document
(the SiiDte default namespace and the root's `xmlns:xsi` in scope), and SignedInfo is signed
with `xmlns:xsi` in scope too. Pure: no Django, no clock (the timestamp is passed in).
"""

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, TypeVar

from dte.core import text
from dte.core.domain import SIIDTE_NS, XSI_NS, Resolucion
from dte.core.envelope import XML_DECLARATION
from dte.core.signing import SigningKey, sign_reference
from dte.core.xml import format_date, format_decimal, format_timestamp
from erp.doctypes import TASA_IVA, Family, codes
from erp.money import percent_of, round_clp

XSI = f' xmlns:xsi="{XSI_NS}"'

# CodImp of the IVA a buyer retains in full on its factura de compra (Formato IECV §7: "IVA
# retenido total", factura de compra emitida 45/46 and its notas).
COD_IVA_RETENIDO_TOTAL = 15

# Formato IECV §4.1/§4.2 and §5 (zona franca): the document types each libro lists one by one.
# Boletas, vales, pasajes and exchange-rate adjustments go only in the summary and are not
# built here.
TIPOS_COMPRA = frozenset(
    {29, 30, 32, 33, 34, 40, 43, 45, 46, 55, 56, 60, 61, 108, 901, 904, 909, 910, 911, 914}
)
TIPOS_VENTA = frozenset(
    {29, 30, 32, 33, 34, 40, 43, 45, 46, 55, 56, 60, 61, 101, 102, 103, 104, 106, 108, 109}
    | {110, 111, 112, 901, 902, 903, 904, 905, 906, 907}
)
# Electronic documents: RznSoc is required only for the others (Formato IECV, RznSoc).
ELECTRONICOS = codes(lambda d: d.electronic and d.envio is not None)
NOTAS = frozenset({55, 56, 60, 61, 104, 106, 111, 112})
# Facturas exentas: no MntNeto nor MntIVA ("Nuevas validaciones IECV" 13 and 29: rechazo).
EXENTAS = codes(lambda d: d.exempt_only and d.family is Family.FACTURA)
# Where the whole IVA can be retained: facturas de compra and their notas (Formato IECV §7,
# code 15; "Nuevas validaciones" 31).
NOTAS_NACIONALES = codes(lambda d: d.note and not d.foreign_currency)  # 55, 56, 60, 61
RETIENEN_IVA = codes(lambda d: d.retains_iva) | NOTAS_NACIONALES
# LibroGuia_v10.xsd DoctoType: what a guía's factura (TpoDocRef) may be.
TIPOS_FACTURA_GUIA = frozenset(
    {30, 32, 33, 34, 35, 38, 39, 40, 45, 46, 55, 56, 60, 61, 101, 102, 103, 104, 105, 106}
    | {108, 109, 901, 902, 903, 904, 905, 906, 907, 909, 910, 911, 914, 918, 919}
)
# LibroCV_v10.xsd CodIVANoRec: 1 operaciones no gravadas o exentas, 2 fuera de plazo, 3 gastos
# rechazados, 4 entrega gratuita, 9 otros.
CODIGOS_IVA_NO_RECUPERABLE = frozenset({1, 2, 3, 4, 9})

_MAX_AMOUNT = 10**18  # ValorType / MontoType: 18 digits
_FECHA_MIN, _FECHA_MAX = date(2000, 1, 1), date(2050, 12, 31)  # LibroCV_v10.xsd FchDoc
_PERIODO = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_RUT = re.compile(r"^(\d{1,8})-([\dK])$")
_RUT_NOISE = re.compile(r"[\s.]")
_RZN_SOC = 50  # RznSoc in both schemas
_COD_AUT_REC = 10


class LibroError(ValueError):
    """Input a libro cannot be built from; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TipoOperacion(StrEnum):
    COMPRA = "COMPRA"
    VENTA = "VENTA"


class TipoLibro(StrEnum):
    MENSUAL = "MENSUAL"  # the regular monthly libro
    ESPECIAL = "ESPECIAL"  # asked for by a notificación: certification's libros
    RECTIFICA = "RECTIFICA"  # replaces an accepted libro; needs CodAutRec


class TipoEnvio(StrEnum):
    TOTAL = "TOTAL"  # the only envío of the libro: the only one built here
    PARCIAL = "PARCIAL"
    FINAL = "FINAL"
    AJUSTE = "AJUSTE"


class AnuladoGuia(IntEnum):
    """Detalle/Anulado of the libro de guías (LibroGuia_v10.xsd, Formato LGD)."""

    FOLIO_ANULADO = 1  # annulled before it was sent to the SII: only the folio is reported
    ANULADA = 2  # annulled after it was sent to the SII
    RECIBIDA_PARCIALMENTE = 3  # goods partly received: amounts unchanged, MntModificado


# --- Input ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaratulaLibro:
    """The envío's Caratula. `periodo` is PeriodoTributario, "AAAA-MM" (for an ESPECIAL libro,
    the earliest period it covers). In certification: TipoLibro ESPECIAL, TipoEnvio TOTAL,
    FolioNotificacion 1 (ventas) or 2 (compras), the certification resolución (NroResol 0)."""

    rut_emisor: str  # RutEmisorLibro
    rut_envia: str  # RutEnvia: the certificate holder who sends it
    periodo: str  # PeriodoTributario
    resolucion: Resolucion  # FchResol, NroResol
    tipo_operacion: TipoOperacion | None = None  # COMPRA or VENTA; None for the libro de guías
    tipo_libro: TipoLibro = TipoLibro.ESPECIAL
    tipo_envio: TipoEnvio = TipoEnvio.TOTAL
    folio_notificacion: int | None = None  # FolioNotificacion: required when ESPECIAL
    cod_aut_rec: str = ""  # CodAutRec: required when RECTIFICA (libro de compras/ventas only)


@dataclass(frozen=True, slots=True)
class DetalleLibro:
    """One document of the libro de compras or de ventas (LibroCompraVenta/EnvioLibro/Detalle).

    The IVA of the document is split as the SII's format says (Tasa × Neto = IVA recuperable +
    IVA no recuperable + IVA uso común): by default it is all MntIVA; `iva_uso_comun` moves it
    to IVAUsoComun, `cod_iva_no_recuperable` to IVANoRec with that code (COMPRA only).
    `retencion_total` says the buyer retained the whole IVA (facturas de compra and their notas):
    OtrosImp code 15 in a libro de compras, IVARetTotal in a libro de ventas; MntTotal then
    leaves it out. An `anulado` row (a folio annulled before it reached the SII) carries only
    its type and folio.
    """

    tipo_doc: int  # TpoDoc
    folio: int  # NroDoc
    fecha: date | None = None  # FchDoc
    rut: str = ""  # RUTDoc: the supplier (COMPRA) or the customer (VENTA)
    razon_social: str = ""  # RznSoc ≤50: required for documents that are not electronic
    monto_exento: int = 0  # MntExe
    monto_neto: int = 0  # MntNeto
    tasa_iva: Decimal = Decimal(TASA_IVA)  # TasaImp
    iva: int | None = None  # the document's IVA; None: round(neto × tasa / 100), half up
    iva_uso_comun: bool = False  # COMPRA: IVAUsoComun, credited by the libro's factor
    cod_iva_no_recuperable: int | None = None  # COMPRA: IVANoRec/CodIVANoRec (1, 2, 3, 4, 9)
    retencion_total: bool = False  # COMPRA: OtrosImp 15; VENTA: IVARetTotal
    nota_de_factura_compra: bool = False  # Emisor 1: a nota that modifies a factura de compra
    tipo_doc_ref: int | None = None  # VENTA: TpoDocRef of the document a nota annuls
    folio_doc_ref: int | None = None  # VENTA: FolioDocRef
    anulado: bool = False  # Anulado A


@dataclass(frozen=True, slots=True)
class FacturaDeGuia:
    """The factura a guía was invoiced in (TpoDocRef, FolioDocRef, FchDocRef)."""

    tipo: int
    folio: int
    fecha: date


@dataclass(frozen=True, slots=True)
class DetalleGuia:
    """One guía de despacho of the libro de guías (LibroGuia/EnvioLibro/Detalle).

    `tipo_operacion` is TpoOper, the guía's IndTraslado (1 venta … 7 devolución). A guía with
    `anulado` FOLIO_ANULADO carries only its folio; any other guía its date and operation, and
    a sale its receiver's RUT and MntTotal. Amounts are written when the guía was valued
    (`monto_neto` > 0).
    """

    folio: int  # Folio
    tipo_operacion: int | None = None  # TpoOper
    fecha: date | None = None  # FchDoc
    rut: str = ""  # RUTDoc: the receiver
    razon_social: str = ""  # RznSoc ≤50
    monto_neto: int = 0  # MntNeto
    tasa_iva: Decimal = Decimal(TASA_IVA)  # TasaImp
    iva: int | None = None  # IVA; None: round(neto × tasa / 100), half up
    anulado: AnuladoGuia | None = None  # Anulado
    monto_modificado: int | None = None  # MntModificado: only with RECIBIDA_PARCIALMENTE
    factura: FacturaDeGuia | None = None  # the factura that invoiced it


# --- Builders -------------------------------------------------------------------------------


def build_libro_compra_venta(
    caratula: CaratulaLibro,
    detalles: Sequence[DetalleLibro],
    *,
    key: SigningKey,
    timestamp: datetime,
    factor_proporcionalidad: Decimal | None = None,
) -> bytes:
    """LibroCompraVenta, signed (Reference to EnvioLibro).

    `factor_proporcionalidad` is the libro de compras' FctProp (a fraction such as 0.55, one
    for the whole libro): required when a row has `iva_uso_comun`. Rows with no documents give
    a libro with its Caratula only ("sin movimientos").
    """
    operacion = caratula.tipo_operacion
    if operacion is None:
        raise LibroError(
            "tipo_operacion", "El libro de compras o ventas debe indicar COMPRA o VENTA."
        )
    operacion = _enum(TipoOperacion, operacion, "tipo_operacion")
    caratula_xml = _caratula(caratula, guia=False)
    periodo = _periodo(caratula.periodo)
    rows = [_row(d, operacion, caratula.tipo_libro, periodo) for d in detalles]
    _check_unique_cv(rows, operacion)
    usa_factor = any(r.iva_uso_comun for r in rows)
    factor = _factor(factor_proporcionalidad, operacion, needed=usa_factor)
    body = caratula_xml
    if rows:
        body += _resumen_cv(rows, operacion, factor) + "".join(r.xml for r in rows)
    libro_id = (
        f"{'IEC' if operacion is TipoOperacion.COMPRA else 'IEV'}_{periodo[0]}{periodo[1]:02d}"
    )
    return _signed("LibroCompraVenta", "LibroCV_v10.xsd", libro_id, body, key, timestamp)


def build_libro_guia(
    caratula: CaratulaLibro,
    guias: Sequence[DetalleGuia],
    *,
    key: SigningKey,
    timestamp: datetime,
) -> bytes:
    """LibroGuia, signed (Reference to EnvioLibro). Its ResumenPeriodo is always written (a
    TOTAL envío must carry it), with zeros when there are no guías."""
    if caratula.tipo_operacion is not None:
        raise LibroError("tipo_operacion", "El libro de guías no lleva tipo de operación.")
    caratula_xml = _caratula(caratula, guia=True)
    periodo = _periodo(caratula.periodo)
    rows = [_guia_row(g) for g in guias]
    repeated = [folio for folio, n in Counter(r.folio for r in rows).items() if n > 1]
    if repeated:
        raise LibroError("folio", f"La guía folio {repeated[0]} está repetida en el libro.")
    body = caratula_xml + _resumen_guias(rows) + "".join(r.xml for r in rows)
    libro_id = f"LGD_{periodo[0]}{periodo[1]:02d}"
    return _signed("LibroGuia", "LibroGuia_v10.xsd", libro_id, body, key, timestamp)


def _signed(
    root: str, xsd: str, libro_id: str, body: str, key: SigningKey, timestamp: datetime
) -> bytes:
    inner = f"{body}<TmstFirma>{format_timestamp(timestamp)}</TmstFirma>"
    canonical = f'<EnvioLibro xmlns="{SIIDTE_NS}"{XSI} ID="{libro_id}">{inner}</EnvioLibro>'
    signature = sign_reference(
        canonical.encode("utf-8"), reference_uri=f"#{libro_id}", key=key, inherited_ns=XSI
    )
    document = (
        f'{XML_DECLARATION}<{root} xmlns="{SIIDTE_NS}"{XSI} version="1.0" '
        f'xsi:schemaLocation="{SIIDTE_NS} {xsd}">'
        f'<EnvioLibro ID="{libro_id}">{inner}</EnvioLibro>{signature.xml}</{root}>'
    )
    return document.encode("iso-8859-1")


# --- Caratula -------------------------------------------------------------------------------


def _caratula(c: CaratulaLibro, *, guia: bool) -> str:
    tipo_libro = _enum(TipoLibro, c.tipo_libro, "tipo_libro")
    tipo_envio = _enum(TipoEnvio, c.tipo_envio, "tipo_envio")
    if tipo_envio is not TipoEnvio.TOTAL:
        raise LibroError(
            "tipo_envio",
            "Solo se construyen envíos TOTAL: un envío PARCIAL, FINAL o AJUSTE necesita los "
            "totales de los otros envíos del libro.",
        )
    if guia and tipo_libro is not TipoLibro.ESPECIAL:
        raise LibroError("tipo_libro", "El libro de guías es siempre ESPECIAL.")
    resolucion = c.resolucion
    if not isinstance(resolucion, Resolucion) or not isinstance(resolucion.fecha, date):
        raise LibroError("resolucion", "Falta la resolución del SII (fecha y número).")
    numero = resolucion.numero
    if isinstance(numero, bool) or not isinstance(numero, int) or not 0 <= numero < 10**6:
        raise LibroError("resolucion", "NroResol debe ser un entero de hasta 6 dígitos.")
    folio = c.folio_notificacion
    if folio is not None:
        _positive(folio, 18 if guia else 10, "folio_notificacion")
    elif tipo_libro is TipoLibro.ESPECIAL:
        raise LibroError(
            "folio_notificacion",
            "Un libro ESPECIAL debe indicar el folio de la notificación (en certificación, 1 "
            "para ventas y 2 para compras).",
        )
    cod_aut_rec = text.clean(c.cod_aut_rec)
    if guia and cod_aut_rec:
        raise LibroError("cod_aut_rec", "El libro de guías no lleva código de rectificación.")
    if len(cod_aut_rec) > _COD_AUT_REC:
        raise LibroError("cod_aut_rec", "CodAutRec admite hasta 10 caracteres.")
    if (tipo_libro is TipoLibro.RECTIFICA) != bool(cod_aut_rec):
        raise LibroError(
            "cod_aut_rec",
            "Un libro RECTIFICA lleva el código de autorización de rectificación, y solo él.",
        )
    year, month = _periodo(c.periodo)
    operacion = (
        ""
        if guia
        else f"<TipoOperacion>{_enum(TipoOperacion, c.tipo_operacion, 'tipo_operacion')}"
        "</TipoOperacion>"
    )
    return (
        "<Caratula>"
        f"<RutEmisorLibro>{_rut(c.rut_emisor, 'rut_emisor')}</RutEmisorLibro>"
        f"<RutEnvia>{_rut(c.rut_envia, 'rut_envia')}</RutEnvia>"
        f"<PeriodoTributario>{year:04d}-{month:02d}</PeriodoTributario>"
        f"<FchResol>{format_date(resolucion.fecha)}</FchResol>"
        f"<NroResol>{numero}</NroResol>"
        f"{operacion}"
        f"<TipoLibro>{tipo_libro}</TipoLibro>"
        f"<TipoEnvio>{tipo_envio}</TipoEnvio>"
        + (f"<FolioNotificacion>{folio}</FolioNotificacion>" if folio is not None else "")
        + _optional("CodAutRec", cod_aut_rec)
        + "</Caratula>"
    )


# --- Libro de compras y ventas --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    """A validated Detalle with its amounts and its XML."""

    tipo: int
    folio: int
    rut: str
    anulado: bool
    exento: int = 0
    neto: int = 0
    iva: int = 0  # MntIVA: recoverable (COMPRA) or the document's (VENTA)
    iva_uso_comun: int = 0
    iva_no_rec: tuple[int, int] | None = None  # (CodIVANoRec, MntIVANoRec)
    retenido: int = 0  # OtrosImp 15 (COMPRA) or IVARetTotal (VENTA)
    total: int = 0
    xml: str = field(default="", repr=False)


def _row(
    d: DetalleLibro, operacion: TipoOperacion, tipo_libro: TipoLibro, periodo: tuple[int, int]
) -> _Row:
    compra = operacion is TipoOperacion.COMPRA
    tipo = _int(d.tipo_doc, "tipo_doc")
    allowed = TIPOS_COMPRA if compra else TIPOS_VENTA
    if tipo not in allowed:
        raise LibroError(
            "tipo_doc",
            f"El tipo de documento {tipo} no se detalla en el libro de "
            f"{'compras' if compra else 'ventas'}.",
        )
    folio = _positive(d.folio, 10, "folio")
    where = f"{tipo} folio {folio}"
    if d.anulado:
        _check_annulled(d, where)
        xml = f"<Detalle><TpoDoc>{tipo}</TpoDoc><NroDoc>{folio}</NroDoc><Anulado>A</Anulado>"
        xml += "</Detalle>"
        return _Row(tipo=tipo, folio=folio, rut="", anulado=True, xml=xml)

    fecha = _fecha(d.fecha, where)
    if not compra:
        _check_sale_period(fecha, periodo, tipo_libro, where)
    rut = _rut(d.rut, "rut")
    razon_social = text.clean(d.razon_social, _RZN_SOC)
    if tipo not in ELECTRONICOS and not razon_social:
        raise LibroError(
            "razon_social", f"El documento {where} no es electrónico: indique su razón social."
        )
    exento = _amount(d.monto_exento, "monto_exento")
    neto = _amount(d.monto_neto, "monto_neto")
    if tipo in EXENTAS and neto:
        raise LibroError("monto_neto", f"La factura exenta {where} no lleva monto neto.")
    tasa = _tasa(d.tasa_iva)
    iva = _iva(neto, tasa, d.iva)
    if d.nota_de_factura_compra and tipo not in NOTAS_NACIONALES:
        raise LibroError(
            "nota_de_factura_compra",
            f"Solo una nota de crédito o débito modifica una factura de compra ({where}).",
        )

    treatments = [d.iva_uso_comun, d.cod_iva_no_recuperable is not None, d.retencion_total]
    if sum(treatments) > 1:
        raise LibroError(
            "iva_uso_comun",
            f"El IVA del documento {where} es de uso común, no recuperable o retenido: solo uno.",
        )
    if any(treatments) and not iva:
        raise LibroError("monto_neto", f"El documento {where} no tiene IVA que tratar.")
    if d.iva_uso_comun and not compra:
        raise LibroError("iva_uso_comun", "El IVA de uso común es del libro de compras.")
    codigo = d.cod_iva_no_recuperable
    if codigo is not None:
        if not compra:
            raise LibroError(
                "cod_iva_no_recuperable", "El IVA no recuperable es del libro de compras."
            )
        if isinstance(codigo, bool) or codigo not in CODIGOS_IVA_NO_RECUPERABLE:
            raise LibroError(
                "cod_iva_no_recuperable", f"Código de IVA no recuperable desconocido: {codigo!r}."
            )
    if d.retencion_total and tipo not in RETIENEN_IVA:
        raise LibroError(
            "retencion_total",
            f"Solo una factura de compra o sus notas retienen el IVA ({where}).",
        )
    ref = _doc_ref(d, tipo, compra, where)

    iva_recuperable = 0 if (d.iva_uso_comun or codigo is not None) else iva
    uso_comun = iva if d.iva_uso_comun else 0
    no_rec = (codigo, iva) if codigo is not None else None
    retenido = iva if d.retencion_total else 0
    total = neto + exento + iva - retenido

    tasa_xml = format_decimal(tasa, 2)
    parts = [f"<TpoDoc>{tipo}</TpoDoc>"]
    if d.nota_de_factura_compra:
        parts.append("<Emisor>1</Emisor>")
    parts.append(f"<NroDoc>{folio}</NroDoc>")
    parts.append(f"<TasaImp>{tasa_xml}</TasaImp>")
    parts.append(f"<FchDoc>{format_date(fecha)}</FchDoc>")
    parts.append(f"<RUTDoc>{rut}</RUTDoc>")
    parts.append(_optional("RznSoc", razon_social))
    parts.append(ref)
    if exento:
        parts.append(f"<MntExe>{exento}</MntExe>")
    parts.append(f"<MntNeto>{neto}</MntNeto>")
    parts.append(f"<MntIVA>{iva_recuperable}</MntIVA>")
    if no_rec:
        parts.append(
            f"<IVANoRec><CodIVANoRec>{no_rec[0]}</CodIVANoRec>"
            f"<MntIVANoRec>{no_rec[1]}</MntIVANoRec></IVANoRec>"
        )
    if uso_comun:
        parts.append(f"<IVAUsoComun>{uso_comun}</IVAUsoComun>")
    if retenido and compra:
        parts.append(
            f"<OtrosImp><CodImp>{COD_IVA_RETENIDO_TOTAL}</CodImp><TasaImp>{tasa_xml}</TasaImp>"
            f"<MntImp>{retenido}</MntImp></OtrosImp>"
        )
    if retenido and not compra:
        parts.append(f"<IVARetTotal>{retenido}</IVARetTotal>")
    parts.append(f"<MntTotal>{total}</MntTotal>")
    return _Row(
        tipo=tipo,
        folio=folio,
        rut=rut,
        anulado=False,
        exento=exento,
        neto=neto,
        iva=iva_recuperable,
        iva_uso_comun=uso_comun,
        iva_no_rec=no_rec,
        retenido=retenido,
        total=total,
        xml="<Detalle>" + "".join(parts) + "</Detalle>",
    )


def _check_annulled(d: DetalleLibro, where: str) -> None:
    """Formato IECV, Anulado: an annulled folio reports its type, its folio and nothing else."""
    extras = {
        "fecha": d.fecha is not None,
        "rut": bool(d.rut),
        "razon_social": bool(d.razon_social),
        "monto_exento": d.monto_exento != 0,
        "monto_neto": d.monto_neto != 0,
        "iva": d.iva is not None,
        "iva_uso_comun": d.iva_uso_comun,
        "cod_iva_no_recuperable": d.cod_iva_no_recuperable is not None,
        "retencion_total": d.retencion_total,
        "nota_de_factura_compra": d.nota_de_factura_compra,
        "tipo_doc_ref": d.tipo_doc_ref is not None or d.folio_doc_ref is not None,
    }
    for name, present in extras.items():
        if present:
            raise LibroError(
                "anulado",
                f"El folio anulado {where} se informa solo con su tipo y folio (sobra {name}).",
            )


def _check_sale_period(
    fecha: date, periodo: tuple[int, int], tipo_libro: TipoLibro, where: str
) -> None:
    """A libro de ventas lists the documents of its month ("Nuevas validaciones" 35: rechazo);
    an ESPECIAL one may span several months from PeriodoTributario on (Formato IECV 1.5 e)."""
    month = (fecha.year, fecha.month)
    if month < periodo or (tipo_libro is not TipoLibro.ESPECIAL and month != periodo):
        raise LibroError(
            "fecha",
            f"El documento {where} es de {fecha.year:04d}-{fecha.month:02d}, fuera del período "
            f"{periodo[0]:04d}-{periodo[1]:02d} del libro de ventas.",
        )


def _doc_ref(d: DetalleLibro, tipo: int, compra: bool, where: str) -> str:
    if d.tipo_doc_ref is None and d.folio_doc_ref is None:
        return ""
    if compra:
        raise LibroError("tipo_doc_ref", "TpoDocRef y FolioDocRef son del libro de ventas.")
    if tipo not in NOTAS:
        raise LibroError("tipo_doc_ref", f"Solo una nota indica el documento que anula ({where}).")
    if d.tipo_doc_ref is None or d.folio_doc_ref is None:
        raise LibroError("tipo_doc_ref", "Indique tipo y folio del documento referenciado.")
    ref_tipo = _int(d.tipo_doc_ref, "tipo_doc_ref")
    if ref_tipo not in TIPOS_VENTA:
        raise LibroError("tipo_doc_ref", f"Tipo de documento referenciado desconocido: {ref_tipo}.")
    ref_folio = _positive(d.folio_doc_ref, 10, "folio_doc_ref")
    return f"<TpoDocRef>{ref_tipo}</TpoDocRef><FolioDocRef>{ref_folio}</FolioDocRef>"


def _check_unique_cv(rows: Iterable[_Row], operacion: TipoOperacion) -> None:
    """The same document twice is a reparo ("Nuevas validaciones" 20 and 41): refuse it. A
    sale's folio is the company's own; a purchase is told apart by its supplier too."""
    seen: set[tuple[int, int, str]] = set()
    for row in rows:
        supplier = row.rut if operacion is TipoOperacion.COMPRA else ""
        identity = (row.tipo, row.folio, supplier)
        if identity in seen:
            raise LibroError("folio", f"El documento {row.tipo} folio {row.folio} está repetido.")
        seen.add(identity)


def _factor(value: Decimal | None, operacion: TipoOperacion, *, needed: bool) -> Decimal | None:
    if value is None:
        if needed:
            raise LibroError(
                "factor_proporcionalidad",
                "Hay compras con IVA de uso común: indique el factor de proporcionalidad.",
            )
        return None
    if operacion is not TipoOperacion.COMPRA:
        raise LibroError(
            "factor_proporcionalidad", "El factor de proporcionalidad es del libro de compras."
        )
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LibroError(
            "factor_proporcionalidad", "El factor de proporcionalidad debe ser un Decimal."
        )
    if not Decimal("0.001") <= value <= 1 or value != value.quantize(Decimal("0.001")):
        raise LibroError(
            "factor_proporcionalidad",
            f"El factor de proporcionalidad es una fracción entre 0,001 y 1 con hasta 3 "
            f"decimales (por ejemplo 0.55), no {value}.",
        )
    return value if needed else None


def _resumen_cv(rows: Sequence[_Row], operacion: TipoOperacion, factor: Decimal | None) -> str:
    """ResumenPeriodo: one TotalesPeriodo per TpoDoc, in the schema's element order. Annulled
    folios count in TotDoc and TotAnulado only (Formato IECV, TotAnulado)."""
    by_tipo: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        by_tipo[row.tipo].append(row)
    totales = []
    for tipo in sorted(by_tipo):
        group = by_tipo[tipo]
        valid = [r for r in group if not r.anulado]
        anulados = len(group) - len(valid)
        parts = [f"<TpoDoc>{tipo}</TpoDoc>", f"<TotDoc>{len(group)}</TotDoc>"]
        if anulados:
            parts.append(f"<TotAnulado>{anulados}</TotAnulado>")
        parts.append(f"<TotMntExe>{sum(r.exento for r in valid)}</TotMntExe>")
        parts.append(f"<TotMntNeto>{sum(r.neto for r in valid)}</TotMntNeto>")
        parts.append(f"<TotMntIVA>{sum(r.iva for r in valid)}</TotMntIVA>")
        no_rec: dict[int, list[int]] = defaultdict(list)
        for r in valid:
            if r.iva_no_rec:
                no_rec[r.iva_no_rec[0]].append(r.iva_no_rec[1])
        for codigo in sorted(no_rec):
            amounts = no_rec[codigo]
            parts.append(
                f"<TotIVANoRec><CodIVANoRec>{codigo}</CodIVANoRec>"
                f"<TotOpIVANoRec>{len(amounts)}</TotOpIVANoRec>"
                f"<TotMntIVANoRec>{sum(amounts)}</TotMntIVANoRec></TotIVANoRec>"
            )
        uso_comun = [r.iva_uso_comun for r in valid if r.iva_uso_comun]
        if uso_comun:
            if factor is None:  # _factor requires it when a row has IVA de uso común
                raise LibroError("factor_proporcionalidad", "Falta el factor de proporcionalidad.")
            total_uso_comun = sum(uso_comun)
            parts.append(f"<TotOpIVAUsoComun>{len(uso_comun)}</TotOpIVAUsoComun>")
            parts.append(f"<TotIVAUsoComun>{total_uso_comun}</TotIVAUsoComun>")
            parts.append(f"<FctProp>{format_decimal(factor, 3)}</FctProp>")
            # Formato IECV 3.3, TotCredIVAUsoComun: factor × total IVA uso común (half up).
            parts.append(
                f"<TotCredIVAUsoComun>{round_clp(factor * total_uso_comun)}</TotCredIVAUsoComun>"
            )
        retenido = sum(r.retenido for r in valid)
        if retenido and operacion is TipoOperacion.COMPRA:
            parts.append(
                f"<TotOtrosImp><CodImp>{COD_IVA_RETENIDO_TOTAL}</CodImp>"
                f"<TotMntImp>{retenido}</TotMntImp></TotOtrosImp>"
            )
        if retenido and operacion is TipoOperacion.VENTA:
            parts.append(f"<TotIVARetTotal>{retenido}</TotIVARetTotal>")
        parts.append(f"<TotMntTotal>{sum(r.total for r in valid)}</TotMntTotal>")
        totales.append("<TotalesPeriodo>" + "".join(parts) + "</TotalesPeriodo>")
    return "<ResumenPeriodo>" + "".join(totales) + "</ResumenPeriodo>"


# --- Libro de guías -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Guia:
    folio: int
    anulado: AnuladoGuia | None
    operacion: int | None
    total: int
    valorada: bool
    modificado: int | None
    xml: str = field(default="", repr=False)


def _guia_row(g: DetalleGuia) -> _Guia:
    folio = _positive(g.folio, 10, "folio")
    where = f"guía folio {folio}"
    anulado = None if g.anulado is None else _enum(AnuladoGuia, g.anulado, "anulado")
    if anulado is AnuladoGuia.FOLIO_ANULADO:
        # Formato LGD, Detalle: "En este caso el resto de los campos no se requieren".
        reported = (g.tipo_operacion, g.fecha, g.rut, g.razon_social, g.monto_neto, g.iva)
        if any(reported) or g.factura is not None or g.monto_modificado is not None:
            raise LibroError(
                "anulado", f"El folio anulado de la {where} se informa solo con su folio."
            )
        xml = f"<Detalle><Folio>{folio}</Folio><Anulado>{int(anulado)}</Anulado></Detalle>"
        return _Guia(folio, anulado, None, 0, False, None, xml)

    operacion = _int(g.tipo_operacion, "tipo_operacion")
    if not 1 <= operacion <= 7:
        raise LibroError(
            "tipo_operacion",
            f"TpoOper de la {where} debe estar entre 1 (venta) y 7 (devolución), no {operacion}.",
        )
    venta = operacion == 1
    fecha = _fecha(g.fecha, where)
    if venta and not g.rut:
        raise LibroError("rut", f"La {where} es de venta: indique el RUT del receptor.")
    rut = _rut(g.rut, "rut") if g.rut else ""
    razon_social = text.clean(g.razon_social, _RZN_SOC)
    neto = _amount(g.monto_neto, "monto_neto")
    tasa = _tasa(g.tasa_iva)
    iva = _iva(neto, tasa, g.iva)
    total = neto + iva
    valorada = neto > 0 or iva > 0
    modificado = None
    if g.monto_modificado is not None:
        if anulado is not AnuladoGuia.RECIBIDA_PARCIALMENTE:
            raise LibroError(
                "monto_modificado",
                f"El monto modificado es de una guía recibida parcialmente (Anulado 3), no de la "
                f"{where}.",
            )
        modificado = _amount(g.monto_modificado, "monto_modificado")

    parts = [f"<Folio>{folio}</Folio>"]
    if anulado is not None:
        parts.append(f"<Anulado>{int(anulado)}</Anulado>")
    parts.append(f"<TpoOper>{operacion}</TpoOper>")
    parts.append(f"<FchDoc>{format_date(fecha)}</FchDoc>")
    parts.append(_optional("RUTDoc", rut))
    parts.append(_optional("RznSoc", razon_social))
    if valorada:
        parts.append(f"<MntNeto>{neto}</MntNeto>")
        parts.append(f"<TasaImp>{format_decimal(tasa, 2)}</TasaImp>")
        parts.append(f"<IVA>{iva}</IVA>")
    if valorada or venta:  # Formato LGD: MntTotal "es obligatorio en el caso de ventas"
        parts.append(f"<MntTotal>{total}</MntTotal>")
    if modificado is not None:
        parts.append(f"<MntModificado>{modificado}</MntModificado>")
    if g.factura is not None:
        factura = g.factura
        tipo = _int(factura.tipo, "factura")
        if tipo not in TIPOS_FACTURA_GUIA:
            raise LibroError("factura", f"Tipo de documento de la factura desconocido: {tipo}.")
        parts.append(f"<TpoDocRef>{tipo}</TpoDocRef>")
        parts.append(f"<FolioDocRef>{_positive(factura.folio, 10, 'factura')}</FolioDocRef>")
        parts.append(
            f"<FchDocRef>{format_date(_fecha(factura.fecha, where, 'factura'))}</FchDocRef>"
        )
    xml = "<Detalle>" + "".join(parts) + "</Detalle>"
    return _Guia(folio, anulado, operacion, total, valorada, modificado, xml)


def _resumen_guias(rows: Sequence[_Guia]) -> str:
    """ResumenPeriodo as Formato LGD defines it: folios annulled before sending (Anulado 1) and
    guías annulled after (Anulado 2) are only counted; a guía de venta is TpoOper 1 and not
    annulled; the other operations are totalled by TpoTraslado."""
    fol_anulados = sum(1 for r in rows if r.anulado is AnuladoGuia.FOLIO_ANULADO)
    anuladas = sum(1 for r in rows if r.anulado is AnuladoGuia.ANULADA)
    vigentes = [
        r for r in rows if r.anulado not in (AnuladoGuia.FOLIO_ANULADO, AnuladoGuia.ANULADA)
    ]
    ventas = [r for r in vigentes if r.operacion == 1]
    modificados = [r.modificado for r in vigentes if r.modificado is not None]
    traslados: dict[int, list[_Guia]] = defaultdict(list)
    for r in vigentes:
        if r.operacion is not None and r.operacion != 1:
            traslados[r.operacion].append(r)
    parts = []
    if fol_anulados:
        parts.append(f"<TotFolAnulado>{fol_anulados}</TotFolAnulado>")
    if anuladas:
        parts.append(f"<TotGuiaAnulada>{anuladas}</TotGuiaAnulada>")
    parts.append(f"<TotGuiaVenta>{len(ventas)}</TotGuiaVenta>")
    parts.append(f"<TotMntGuiaVta>{sum(r.total for r in ventas)}</TotMntGuiaVta>")
    if modificados:
        parts.append(f"<TotMntModificado>{sum(modificados)}</TotMntModificado>")
    for operacion in sorted(traslados):
        group = traslados[operacion]
        monto = sum(r.total for r in group)
        parts.append(
            f"<TotTraslado><TpoTraslado>{operacion}</TpoTraslado><CantGuia>{len(group)}</CantGuia>"
            + (f"<MntGuia>{monto}</MntGuia>" if any(r.valorada for r in group) else "")
            + "</TotTraslado>"
        )
    return "<ResumenPeriodo>" + "".join(parts) + "</ResumenPeriodo>"


# --- Pieces ---------------------------------------------------------------------------------


def _optional(tag: str, value: str) -> str:
    return f"<{tag}>{text.escape(value)}</{tag}>" if value else ""


_E = TypeVar("_E", TipoOperacion, TipoLibro, TipoEnvio, AnuladoGuia)


def _enum(kind: type[_E], value: Any, field_name: str) -> _E:
    try:
        return kind(value)
    except (ValueError, TypeError):
        raise LibroError(field_name, f"Valor no admitido: {value!r}.") from None


def _int(value: object, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LibroError(field_name, f"Se esperaba un número entero, no {value!r}.")
    return value


def _positive(value: object, digits: int, field_name: str) -> int:
    number = _int(value, field_name)
    if not 1 <= number < 10**digits:
        raise LibroError(field_name, f"Debe ser un entero positivo de hasta {digits} dígitos.")
    return number


def _amount(value: object, field_name: str) -> int:
    """Whole pesos, never float nor negative (negatives are for liquidaciones, not built here)."""
    number = _int(value, field_name)
    if not 0 <= number < _MAX_AMOUNT:
        raise LibroError(
            field_name, f"Debe ser un monto en pesos entre 0 y 18 dígitos, no {number}."
        )
    return number


def _tasa(value: object) -> Decimal:
    """PctType: 0 to 100 with at most 2 decimals."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LibroError("tasa_iva", f"La tasa debe ser un Decimal, no {value!r}.")
    if not 0 <= value <= 100 or value != value.quantize(Decimal("0.01")):
        raise LibroError("tasa_iva", f"Tasa fuera de rango (0 a 100, 2 decimales): {value}.")
    return value


def _iva(neto: int, tasa: Decimal, given: int | None) -> int:
    if given is None:
        return percent_of(neto, tasa)
    iva = _amount(given, "iva")
    if iva and not neto:
        # "Nuevas validaciones IECV" 2: IVA without MntNeto is a rechazo.
        raise LibroError("iva", "Un documento con IVA debe tener monto neto.")
    return iva


def _fecha(value: object, where: str, field_name: str = "fecha") -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise LibroError(field_name, f"Falta la fecha del documento ({where}).")
    if not _FECHA_MIN <= value <= _FECHA_MAX:
        raise LibroError(field_name, f"Fecha fuera de rango ({where}): {value.isoformat()}.")
    return value


def _periodo(value: object) -> tuple[int, int]:
    match = _PERIODO.match(value) if isinstance(value, str) else None
    if not match:
        raise LibroError("periodo", f"El período tributario es AAAA-MM, no {value!r}.")
    return int(match[1]), int(match[2])


def _rut(value: object, field_name: str) -> str:
    """A RUT with a valid check digit, in the XSD's form (`76086428-5`)."""
    compact = _RUT_NOISE.sub("", value).upper() if isinstance(value, str) else ""
    match = _RUT.match(compact)
    if not match or int(match[1]) == 0:
        raise LibroError(field_name, f"{value!r} no es un RUT (12345678-9).")
    body = int(match[1])
    if _check_digit(body) != match[2]:
        raise LibroError(field_name, f"RUT {value!r}: el dígito verificador no corresponde.")
    return f"{body}-{match[2]}"


def _check_digit(body: int) -> str:
    """Mod 11 (DOMAIN.md §14): digits from the right times 2, 3, … 7, 2, 3, …"""
    total, factor = 0, 2
    while body:
        total += (body % 10) * factor
        body //= 10
        factor = 2 if factor == 7 else factor + 1
    rest = 11 - total % 11
    return "0" if rest == 11 else "K" if rest == 10 else str(rest)
