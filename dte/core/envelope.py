"""EnvioDTE and EnvioBOLETA (DOMAIN.md §10): Caratula, the signed DTEs embedded as unchanged text,
and the SetDTE signature computed over SetDTE in the envelope's context."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dte.core.domain import SII_RUT, SIIDTE_NS, XSI_NS, Resolucion
from dte.core.signing import SigningKey, canonical_in_parent, sign_reference
from dte.core.xml import format_date, format_timestamp
from erp.doctypes import Envio, doc_type

XML_DECLARATION = '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
SET_ID = "SetDoc"
MAX_BOLETAS = 500  # EnvioBOLETA_v11.xsd: DTE 1..500
MAX_DTES = 2000  # EnvioDTE_v10.xsd: DTE 1..2000


@dataclass(frozen=True, slots=True)
class EnvelopeItem:
    tipo: int  # a TipoDte, or an export type (110–112): the registry says its envelope
    xml: str  # a DTE element from signing.sign_documento


def envelope_kind(tipos: Sequence[int]) -> str:
    """Boletas travel in EnvioBOLETA, everything else in EnvioDTE; the two never mix."""
    kinds = {doc_type(t).envio for t in tipos}
    if len(kinds) > 1:
        raise ValueError("Las boletas (39, 41) se envían en un sobre distinto de los demás DTE.")
    return str(kinds.pop() or Envio.DTE) if kinds else str(Envio.DTE)


def build_caratula(
    *,
    rut_emisor: str,
    rut_envia: str,
    rut_receptor: str,
    resolucion: Resolucion,
    timestamp: datetime,
    tipos: Sequence[int],
) -> str:
    subtotals = "".join(
        f"<SubTotDTE><TpoDTE>{int(tipo)}</TpoDTE><NroDTE>{count}</NroDTE></SubTotDTE>"
        for tipo, count in sorted(Counter(tipos).items())
    )
    return (
        '<Caratula version="1.0">'
        f"<RutEmisor>{rut_emisor}</RutEmisor><RutEnvia>{rut_envia}</RutEnvia>"
        f"<RutReceptor>{rut_receptor}</RutReceptor>"
        f"<FchResol>{format_date(resolucion.fecha)}</FchResol>"
        f"<NroResol>{resolucion.numero}</NroResol>"
        f"<TmstFirmaEnv>{format_timestamp(timestamp)}</TmstFirmaEnv>"
        f"{subtotals}</Caratula>"
    )


def build_envelope(
    items: Sequence[EnvelopeItem],
    *,
    rut_emisor: str,
    rut_envia: str,
    resolucion: Resolucion,
    timestamp: datetime,
    key: SigningKey,
    rut_receptor: str = SII_RUT,
) -> bytes:
    """The signed envelope as ISO-8859-1 bytes, ready to validate, store and upload."""
    if not items:
        raise ValueError("Un sobre debe contener al menos un DTE.")
    tipos = [item.tipo for item in items]
    kind = envelope_kind(tipos)
    if kind == "EnvioBOLETA" and len(items) > MAX_BOLETAS:
        raise ValueError(f"Un EnvioBOLETA admite hasta {MAX_BOLETAS} boletas.")
    if kind == "EnvioDTE" and len(items) > MAX_DTES:
        raise ValueError(f"Un EnvioDTE admite hasta {MAX_DTES} documentos.")
    caratula = build_caratula(
        rut_emisor=rut_emisor,
        rut_envia=rut_envia,
        rut_receptor=rut_receptor,
        resolucion=resolucion,
        timestamp=timestamp,
        tipos=tipos,
    )
    xsi = f' xmlns:xsi="{XSI_NS}"'
    canonical_set = (
        f'<SetDTE xmlns="{SIIDTE_NS}"{xsi} ID="{SET_ID}">{caratula}'
        + "".join(canonical_in_parent(item.xml) for item in items)
        + "</SetDTE>"
    )
    signature = sign_reference(
        canonical_set.encode("utf-8"), reference_uri=f"#{SET_ID}", key=key, inherited_ns=xsi
    )
    schema = "EnvioBOLETA_v11.xsd" if kind == "EnvioBOLETA" else "EnvioDTE_v10.xsd"
    document = (
        f'{XML_DECLARATION}<{kind} xmlns="{SIIDTE_NS}"{xsi} version="1.0" '
        f'xsi:schemaLocation="{SIIDTE_NS} {schema}">'
        f'<SetDTE ID="{SET_ID}">{caratula}'
        + "".join(item.xml for item in items)
        + f"</SetDTE>{signature.xml}</{kind}>"
    )
    return document.encode("iso-8859-1")
