"""What a printed DTE shows, read back from its signed XML: the paper says exactly what was
signed and stamped. Pure: lxml only."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lxml import etree

from dte.core.schemas import safe_parse
from erp import siicodes
from erp.doctypes import IND_TRASLADO_LABELS, TIPO_DESPACHO_LABELS, IndTraslado, TipoDespacho
from erp.money import format_decimal


@dataclass(frozen=True)
class Party:
    rut: str
    razon_social: str
    giro: str = ""
    direccion: str = ""
    comuna: str = ""
    ciudad: str = ""
    contacto: str = ""
    actecos: tuple[str, ...] = ()


@dataclass(frozen=True)
class Line:
    number: int
    code: str
    name: str
    description: str
    quantity: Decimal | None
    unit: str
    price: Decimal | None
    discount_pct: Decimal | None
    discount: int
    amount: int | Decimal  # an export's in its currency
    exempt: bool
    liquidated: str = ""  # a liquidación factura's TpoDocLiq: the liquidated document's type


@dataclass(frozen=True)
class Reference:
    tipo: str
    folio: str
    fecha: date | None
    cod_ref: str
    razon: str


@dataclass(frozen=True)
class Adjustment:
    movement: str  # D / R
    value_type: str  # % / $
    value: Decimal
    glosa: str


@dataclass(frozen=True)
class Commission:
    """A liquidación factura's Comisiones line."""

    kind: str  # C comisión, O otros cargos
    glosa: str
    tasa: Decimal | None
    neto: int
    exento: int
    iva: int


@dataclass(frozen=True)
class PrintData:
    tipo: int
    folio: int
    fecha_emision: date
    fecha_vencimiento: date | None
    forma_pago: str
    emisor: Party
    receptor: Party
    lines: tuple[Line, ...]
    adjustments: tuple[Adjustment, ...]
    references: tuple[Reference, ...]
    neto: int
    exento: int | Decimal
    tasa_iva: int
    iva: int
    iva_retenido: int
    total: int | Decimal
    ted: bytes  # the <TED>…</TED> as the PDF417 carries it (ISO-8859-1, no xmlns)
    traslado: tuple[str, ...] = ()  # guías: the motive, the despacho and the transport, in words
    moneda: str = ""  # exports: Totales/TpoMoneda; amounts above are in it
    tipo_cambio: Decimal | None = None  # OtraMoneda/TpoCambio
    total_pesos: int | None = None  # OtraMoneda/MntTotOtrMnda
    aduana: tuple[str, ...] = ()  # exports: the customs data, in words
    commissions: tuple[Commission, ...] = ()  # a liquidación factura's
    comision_neto: int = 0  # Totales/Comisiones
    comision_exento: int = 0
    comision_iva: int = 0


def _t(node: etree._Element | None, path: str) -> str:
    if node is None:
        return ""
    return (node.findtext("/".join(f"{{*}}{p}" for p in path.split("/"))) or "").strip()


def _int(text: str) -> int:
    return int(Decimal(text)) if text else 0


def _dec(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


FORMA_PAGO = {"1": "Contado", "2": "Crédito", "3": "Sin costo"}


def _ted_bytes(ted: etree._Element) -> bytes:
    """The TED element as text without namespace declarations (DOMAIN.md §13)."""
    copy = etree.fromstring(etree.tostring(ted))
    for element in copy.iter():
        element.tag = etree.QName(element).localname
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding="iso-8859-1", xml_declaration=False)


def _traslado(enc: etree._Element) -> tuple[str, ...]:
    """A guía's IndTraslado, TipoDespacho and Transporte as printed lines."""
    lines = []
    motive = _t(enc, "IdDoc/IndTraslado")
    if motive.isdigit() and int(motive) in {int(k) for k in IND_TRASLADO_LABELS}:
        lines.append(f"Motivo del traslado: {IND_TRASLADO_LABELS[IndTraslado(int(motive))]}")
    despacho = _t(enc, "IdDoc/TipoDespacho")
    if despacho.isdigit() and int(despacho) in {int(k) for k in TIPO_DESPACHO_LABELS}:
        lines.append(f"Despacho: {TIPO_DESPACHO_LABELS[TipoDespacho(int(despacho))]}")
    transporte = enc.find("{*}Transporte")
    if transporte is not None:
        vehicle = [
            f"Patente {_t(transporte, 'Patente')}" if _t(transporte, "Patente") else "",
            f"transportista {_t(transporte, 'RUTTrans')}" if _t(transporte, "RUTTrans") else "",
        ]
        if any(vehicle):
            lines.append("Transporte: " + ", ".join(v for v in vehicle if v))
        if _t(transporte, "Chofer/NombreChofer"):
            name, rut = _t(transporte, "Chofer/NombreChofer"), _t(transporte, "Chofer/RUTChofer")
            lines.append(f"Chofer: {name}, {rut}")
        destino = [_t(transporte, tag) for tag in ("DirDest", "CmnaDest", "CiudadDest")]
        if any(destino):
            lines.append("Destino: " + ", ".join(d for d in destino if d))
    return tuple(lines)


def _amount(text: str) -> int | Decimal:
    """An amount as written: whole pesos, or an export's decimals in its currency."""
    number = Decimal(text) if text else Decimal(0)
    return int(number) if number == number.to_integral_value() and "." not in text else number


def _aduana(enc: etree._Element, moneda: str) -> tuple[str, ...]:
    """Transporte/Aduana of an export in words, the codes named by the Aduana's tables, the
    amounts in the document's currency and the numbers as Chileans write them."""
    aduana = enc.find("{*}Transporte/{*}Aduana")
    if aduana is None:
        return ()
    try:
        symbol = siicodes.currency(moneda).symbol
    except KeyError:
        symbol = moneda

    def number(tag: str, money: bool = False) -> str:
        text = _t(aduana, tag)
        if not text:
            return ""
        shown = format_decimal(Decimal(text), 2 if money else None)
        return f"{symbol} {shown}".strip() if money else shown

    def named(tag: str, table: str) -> str:
        code = _t(aduana, tag)
        return siicodes.name_of(table, code) if code and siicodes.is_valid(table, code) else code

    pairs = [
        ("Modalidad de venta", named("CodModVenta", "modalidades")),
        ("Cláusula de venta", named("CodClauVenta", "clausulas")),
        ("Total cláusula", number("TotClauVenta", money=True)),
        ("Vía de transporte", named("CodViaTransp", "vias_transporte")),
        ("Nave o transporte", _t(aduana, "NombreTransp")),
        ("Puerto de embarque", named("CodPtoEmbarque", "puertos")),
        ("Puerto de desembarque", named("CodPtoDesemb", "puertos")),
        ("Peso bruto", number("PesoBruto")),
        ("Peso neto", number("PesoNeto")),
        ("Total bultos", _t(aduana, "TotBultos")),
        ("Flete", number("MntFlete", money=True)),
        ("Seguro", number("MntSeguro", money=True)),
        ("País receptor", named("CodPaisRecep", "paises")),
        ("País de destino", named("CodPaisDestin", "paises")),
    ]
    lines = [f"{label}: {value}" for label, value in pairs if value]
    for bulto in aduana.findall("{*}TipoBultos"):
        kind = _t(bulto, "CodTpoBultos")
        name = siicodes.name_of("bultos", kind) if siicodes.is_valid("bultos", kind) else kind
        marks = ", ".join(
            v for v in (_t(bulto, "Marcas"), _t(bulto, "IdContainer"), _t(bulto, "Sello")) if v
        )
        lines.append(f"Bultos: {_t(bulto, 'CantBultos')} {name}" + (f" ({marks})" if marks else ""))
    return tuple(lines)


def read_dte(xml: bytes) -> PrintData:
    root = safe_parse(xml)
    # Documento, or Exportaciones (110–112) and Liquidacion (43): what the DTE wraps.
    documento = next(e for e in root.iter("{*}Documento", "{*}Exportaciones", "{*}Liquidacion"))
    enc = documento.find("{*}Encabezado")
    emisor = enc.find("{*}Emisor")
    receptor = enc.find("{*}Receptor")
    totales = enc.find("{*}Totales")
    lines = tuple(
        Line(
            number=_int(_t(d, "NroLinDet")),
            code=_t(d, "CdgItem/VlrCodigo"),
            name=_t(d, "NmbItem"),
            description=_t(d, "DscItem"),
            quantity=_dec(_t(d, "QtyItem")),
            unit=_t(d, "UnmdItem"),
            price=_dec(_t(d, "PrcItem")),
            discount_pct=_dec(_t(d, "DescuentoPct")),
            discount=_int(_t(d, "DescuentoMonto")),
            amount=_amount(_t(d, "MontoItem")),
            exempt=_t(d, "IndExe") == "1",
            liquidated=_t(d, "TpoDocLiq"),
        )
        for d in documento.findall("{*}Detalle")
    )
    retained = sum(
        _int(_t(r, "MontoImp"))
        for r in totales.findall("{*}ImptoReten")
        if _t(r, "TipoImp") == "15"
    )
    return PrintData(
        tipo=_int(_t(enc, "IdDoc/TipoDTE")),
        folio=_int(_t(enc, "IdDoc/Folio")),
        fecha_emision=_date(_t(enc, "IdDoc/FchEmis")),
        fecha_vencimiento=_date(_t(enc, "IdDoc/FchVenc")),
        forma_pago=FORMA_PAGO.get(_t(enc, "IdDoc/FmaPago"), ""),
        emisor=Party(
            rut=_t(emisor, "RUTEmisor"),
            razon_social=_t(emisor, "RznSoc") or _t(emisor, "RznSocEmisor"),
            giro=_t(emisor, "GiroEmis") or _t(emisor, "GiroEmisor"),
            direccion=_t(emisor, "DirOrigen"),
            comuna=_t(emisor, "CmnaOrigen"),
            ciudad=_t(emisor, "CiudadOrigen"),
            actecos=tuple(a.text for a in emisor.findall("{*}Acteco") if a.text),
        ),
        receptor=Party(
            rut=_t(receptor, "RUTRecep"),
            razon_social=_t(receptor, "RznSocRecep"),
            giro=_t(receptor, "GiroRecep"),
            direccion=_t(receptor, "DirRecep"),
            comuna=_t(receptor, "CmnaRecep"),
            ciudad=_t(receptor, "CiudadRecep"),
            contacto=_t(receptor, "Contacto"),
        ),
        lines=lines,
        adjustments=tuple(
            Adjustment(
                _t(g, "TpoMov"), _t(g, "TpoValor"), Decimal(_t(g, "ValorDR") or 0), _t(g, "GlosaDR")
            )
            for g in documento.findall("{*}DscRcgGlobal")
        ),
        references=tuple(
            Reference(
                _t(r, "TpoDocRef"),
                _t(r, "FolioRef"),
                _date(_t(r, "FchRef")),
                _t(r, "CodRef"),
                _t(r, "RazonRef"),
            )
            for r in documento.findall("{*}Referencia")
        ),
        neto=_int(_t(totales, "MntNeto")),
        exento=_amount(_t(totales, "MntExe")),
        tasa_iva=_int(_t(totales, "TasaIVA")) or (19 if _t(totales, "IVA") else 0),
        iva=_int(_t(totales, "IVA")),
        iva_retenido=retained,
        total=_amount(_t(totales, "MntTotal")),
        ted=_ted_bytes(documento.find("{*}TED")),
        traslado=_traslado(enc),
        moneda=_t(totales, "TpoMoneda"),
        tipo_cambio=_dec(_t(enc, "OtraMoneda/TpoCambio")),
        total_pesos=_int(_t(enc, "OtraMoneda/MntTotOtrMnda")) or None,
        aduana=_aduana(enc, _t(totales, "TpoMoneda")),
        commissions=tuple(
            Commission(
                kind=_t(c, "TipoMovim"),
                glosa=_t(c, "Glosa"),
                tasa=_dec(_t(c, "TasaComision")),
                neto=_int(_t(c, "ValComNeto")),
                exento=_int(_t(c, "ValComExe")),
                iva=_int(_t(c, "ValComIVA")),
            )
            for c in documento.findall("{*}Comisiones")
        ),
        comision_neto=_int(_t(totales, "Comisiones/ValComNeto")),
        comision_exento=_int(_t(totales, "Comisiones/ValComExe")),
        comision_iva=_int(_t(totales, "Comisiones/ValComIVA")),
    )
