"""What an export document (110–112) carries beyond a factura's fields, checked field by field:
its currency and exchange rate, the export payment form, the service indicator, and the customs
data (Transporte/Aduana) as Aduana codes. Pure: no Django (dte.core.export reads the same specs).

The customs data is kept as a JSON object whose keys are dte.core.export.Aduana's fields; codes
are integers, amounts decimal strings. Sources: DTE_v10.xsd and dte/core/EXPORTS.md §1.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from erp import siicodes
from erp.money import format_decimal
from erp.rut import InvalidRut, normalize_rut
from erp.totals import GlobalAdjustment, Movement, ValueType

IND_SERVICIO = (3, 4, 5)  # Exportaciones/IdDoc/IndServicio in the XSD (EXPORTS.md §1.4)
PESO_CL = "PESO CL"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    label: str
    kind: str  # code | int | decimal | text | rut
    table: str = ""  # for codes: the erp.siicodes table
    places: int = 0  # for decimals: fraction digits
    max_length: int = 0  # for text


ADUANA_FIELDS: Mapping[str, FieldSpec] = {
    "modalidad_venta": FieldSpec("Modalidad de venta", "code", "modalidades"),
    "clausula_venta": FieldSpec("Cláusula de venta", "code", "clausulas"),
    "total_clausula": FieldSpec("Total cláusula de venta", "decimal", places=2),
    "via_transporte": FieldSpec("Vía de transporte", "code", "vias_transporte"),
    "nombre_transporte": FieldSpec("Nave o medio de transporte", "text", max_length=40),
    "rut_cia_transporte": FieldSpec("RUT compañía transportista", "rut"),
    "nombre_cia_transporte": FieldSpec("Compañía transportista", "text", max_length=40),
    "booking": FieldSpec("Booking", "text", max_length=20),
    "operador": FieldSpec("Operador", "text", max_length=20),
    "puerto_embarque": FieldSpec("Puerto de embarque", "code", "puertos"),
    "puerto_desembarque": FieldSpec("Puerto de desembarque", "code", "puertos"),
    "tara": FieldSpec("Tara", "int"),
    "unidad_tara": FieldSpec("Unidad de la tara", "code", "unidades"),
    "peso_bruto": FieldSpec("Peso bruto", "decimal", places=2),
    "unidad_peso_bruto": FieldSpec("Unidad del peso bruto", "code", "unidades"),
    "peso_neto": FieldSpec("Peso neto", "decimal", places=2),
    "unidad_peso_neto": FieldSpec("Unidad del peso neto", "code", "unidades"),
    "total_items": FieldSpec("Total de ítems", "int"),
    "total_bultos": FieldSpec("Total de bultos", "int"),
    "tipo_bultos": FieldSpec("Tipo de bultos", "code", "bultos"),
    "marcas": FieldSpec("Marcas", "text", max_length=255),
    "id_container": FieldSpec("Contenedor", "text", max_length=25),
    "sello": FieldSpec("Sello", "text", max_length=20),
    "flete": FieldSpec("Flete", "decimal", places=4),
    "seguro": FieldSpec("Seguro", "decimal", places=4),
    "pais_receptor": FieldSpec("País receptor", "code", "paises"),
    "pais_destino": FieldSpec("País de destino", "code", "paises"),
}


def clean_aduana(raw: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The customs data typed (codes and counts as int, amounts as decimal strings, texts
    trimmed, empty values left out), and the Spanish error of each field that is wrong."""
    if raw in (None, ""):
        return {}, {}
    if not isinstance(raw, Mapping):
        return {}, {"aduana": "Los datos de Aduana deben ser un objeto."}
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in sorted(set(raw) - set(ADUANA_FIELDS)):
        errors[f"aduana.{key}"] = "Campo desconocido."
    for name, spec in ADUANA_FIELDS.items():
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        problem, typed = _typed(spec, value)
        if problem:
            errors[f"aduana.{name}"] = problem
        else:
            clean[name] = typed
    return clean, errors


def _typed(spec: FieldSpec, value: Any) -> tuple[str, Any]:
    if spec.kind == "code":
        if isinstance(value, bool) or not siicodes.is_valid(spec.table, value):
            return f"{spec.label}: código desconocido en la tabla de Aduana.", None
        return "", int(siicodes.normalize_code(value))
    if spec.kind == "int":
        try:
            number = int(str(value))
        except ValueError:
            return f"{spec.label}: ingrese un número entero.", None
        return ("", number) if number > 0 else (f"{spec.label}: debe ser mayor que cero.", None)
    if spec.kind == "decimal":
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return f"{spec.label}: ingrese un número.", None
        if not amount.is_finite() or amount <= 0:
            return f"{spec.label}: debe ser mayor que cero.", None
        if amount != amount.quantize(Decimal(1).scaleb(-spec.places)):
            return f"{spec.label}: máximo {spec.places} decimales.", None
        return "", str(amount)
    if spec.kind == "rut":
        try:
            return "", normalize_rut(str(value))
        except InvalidRut as exc:
            return f"{spec.label}: {exc}", None
    text = str(value).strip()
    if len(text) > spec.max_length:
        return f"{spec.label}: máximo {spec.max_length} caracteres.", None
    return "", text


def currency_problem(moneda: str) -> str:
    """Why `moneda` cannot be an export's currency, or ""."""
    try:
        currency = siicodes.currency(moneda)
    except KeyError:
        return "Moneda desconocida: use una de la tabla del SII (p. ej. DOLAR USA)."
    if currency.name == PESO_CL:
        return "Use la moneda de la operación (p. ej. DOLAR USA), no pesos."
    if currency.obsolete:
        return f"La moneda {currency.name} ya no circula: use la que la reemplazó."
    return ""


def freight_and_insurance(aduana: Mapping[str, Any]) -> list[GlobalAdjustment]:
    """A factura de exportación carries its freight and insurance twice: in Aduana (MntFlete,
    MntSeguro) and as two exempt surcharges that add to its total (EXPORTS.md §1.6)."""
    return [
        GlobalAdjustment(Movement.SURCHARGE, ValueType.AMOUNT, Decimal(str(aduana[key])), True)
        for key in ("flete", "seguro")
        if aduana.get(key)
    ]


def format_in_currency(value: Decimal | int, moneda: str) -> str:
    """An amount in an export's currency, es-CL: `US$ 43.902,25` (its symbol, its minor unit)."""
    try:
        currency = siicodes.currency(moneda)
    except KeyError:
        return f"{moneda} {format_decimal(value)}".strip()
    return f"{currency.symbol} {format_decimal(Decimal(value), currency.decimals)}"
