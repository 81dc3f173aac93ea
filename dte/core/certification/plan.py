"""From a set de pruebas read (`setfile`) to the documents that answer it (DOMAIN.md §16).
Pure: no Django.

Each case becomes one document, in the form erp.services takes a draft (lines, global
adjustments, guía and export data), with the references the SII expects: first `SET` /
`<atención>-<n>` / `CASO <atención>-<n>`, then, for a nota, the document of the case it modifies
(`ref_caso`: its folio is known only once that case is issued) with its `CodRef`:

- 1 "ANULA …": the referenced case's lines and global adjustments, copied;
- 2 "CORRIGE …": one line naming the correction, without amounts;
- 3 "DEVOLUCION …" (and any other change of amounts): the returned quantities at the referenced
  case's prices, line discounts and percentage global discount.

The boleta set (39, or 41 when its name says the boletas are exempt) becomes boletas whose lines
carry the set's prices, which include IVA (erp's totals take a boleta's prices as gross), to the
anonymous receiver, each with the one reference that set asks for: `SET` / `<n>` / `CASO-<n>`,
which dte.mapping writes as a boleta's CodRef "SET" and RazonRef "CASO-<n>"
(dte/core/CERTIFICATION.md, "The boleta set").

Exports name their customs data in words; they become the Aduana's codes (erp.siicodes), a
foreign port the table lacks becoming its country's "OTROS PUERTOS DE …". What the set leaves
out and a document needs (an exchange rate, a package count for a service) is chosen here and
listed in the document's `assumptions`; what cannot be read or mapped is a `problem`, and a plan
with problems is not issued.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dte.core.certification.setfile import Case, Item, SetFile, SetKind, TestSet, _normalize
from erp import siicodes
from erp.doctypes import CodRef, IndTraslado, TipoDte, doc_type
from erp.money import format_decimal

# Sets whose cases are documents sent to the SII, each set in its own envelope: an EnvioDTE, or
# for the boleta set an EnvioBOLETA through the boletas' REST API (libros are built from these
# documents).
DOCUMENT_SETS = frozenset(
    {
        SetKind.BASICO,
        SetKind.FACTURA_EXENTA,
        SetKind.GUIA_DESPACHO,
        SetKind.EXPORTACION,
        SetKind.FACTURA_COMPRA,
        SetKind.BOLETA,
        SetKind.OTHER,
    }
)

# Pesos per unit when the run does not say (an export needs its day's rate; the set gives none).
DEFAULT_RATES: Mapping[str, Decimal] = {
    "DOLAR USA": Decimal("950.00"),
    "EURO": Decimal("1030.00"),
}


class Receiver:
    """Who a planned document goes to."""

    DEFAULT = "default"  # the certification's national receiver (the run chooses it)
    ISSUER = "issuer"  # a traslado interno: the company itself
    # A boleta's consumidor final (66.666.666-6). The run gives ISSUER and ANONYMOUS alike no
    # partner; a document without one is written (dte.mapping) to the emisor when it is a
    # traslado interno and to the anonymous receiver when it is a boleta.
    ANONYMOUS = ISSUER
    FOREIGN = "foreign"  # a customer abroad (RUT 55.555.555-5), of `country`


@dataclass(frozen=True)
class PlannedReference:
    tipo_doc_ref: str
    folio_ref: str = ""  # empty: the folio of `ref_caso`'s document, once issued
    razon_ref: str = ""
    cod_ref: int | None = None
    ref_caso: str = ""


@dataclass(frozen=True)
class PlannedDocument:
    caso: str
    tipo: int
    lines: tuple[dict[str, Any], ...]
    header: dict[str, Any] = field(default_factory=dict)
    receiver: str = Receiver.DEFAULT
    country: str = ""  # a foreign receiver's Aduana country code
    references: tuple[PlannedReference, ...] = ()
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedSet:
    set: TestSet
    documents: tuple[PlannedDocument, ...]
    problems: tuple[str, ...] = ()

    @property
    def sendable(self) -> bool:
        return bool(self.documents) and not self.problems


@dataclass(frozen=True)
class Plan:
    sets: tuple[PlannedSet, ...]

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(p for s in self.sets for p in s.problems)

    def document(self, caso: str) -> PlannedDocument | None:
        return next((d for s in self.sets for d in s.documents if d.caso == caso), None)


class _CaseProblem(Exception):
    pass


def cod_ref_for(razon: str) -> CodRef:
    """CodRef by the set's RAZON REFERENCIA: "ANULA …" 1, "CORRIGE …" (a giro, a name, an
    address: text) 2, anything else (a return, a discount, a price) 3."""
    norm = _normalize(razon)
    if re.search(r"\bANULA", norm):
        return CodRef.ANULA
    if re.search(r"\bCORRIGE\b|\bCORRECCION\b|MODIFICA\s+TEXTO", norm) and not re.search(
        r"MONTO|PRECIO|CANTIDAD", norm
    ):
        return CodRef.CORRIGE_TEXTO
    return CodRef.CORRIGE_MONTOS


def plan(
    setfile: SetFile,
    *,
    exchange_rates: Mapping[str, Decimal] = DEFAULT_RATES,
    today: date | None = None,
) -> Plan:
    """The documents of every set that is issued, case by case, in the file's order."""
    del today  # dates are the run's: every document of a set is issued the same day
    planned: dict[str, PlannedDocument] = {}
    sets = []
    for test_set in setfile.sets:
        if test_set.kind not in DOCUMENT_SETS or not test_set.cases:
            continue
        documents, problems = [], []
        for case in test_set.cases:
            try:
                document = _document(case, planned, exchange_rates, test_set.kind)
            except _CaseProblem as exc:
                problems.append(f"Caso {case.caso}: {exc}")
                continue
            planned[case.caso] = document
            documents.append(document)
        sets.append(PlannedSet(test_set, tuple(documents), tuple(problems)))
    return Plan(tuple(sets))


def _set_reference(case: Case) -> PlannedReference:
    return PlannedReference(tipo_doc_ref="SET", folio_ref=case.caso, razon_ref=f"CASO {case.caso}")


def _boleta_set_reference(case: Case) -> PlannedReference:
    """The boleta set's reference: its case as the set heads it, "CASO-1" (RazonRef); the SET
    mark becomes the boleta's CodRef when written (dte.mapping)."""
    return PlannedReference(tipo_doc_ref="SET", folio_ref=case.caso, razon_ref=f"CASO-{case.caso}")


def _document(
    case: Case,
    planned: Mapping[str, PlannedDocument],
    rates: Mapping[str, Decimal],
    kind: SetKind,
) -> PlannedDocument:
    if case.problems:
        raise _CaseProblem("; ".join(case.problems))
    if case.tipo is None or case.tipo not in {int(t) for t in TipoDte}:
        raise _CaseProblem(f"este sistema no emite «{case.document}»")
    tipo = TipoDte(case.tipo)
    if (kind is SetKind.BOLETA) != tipo.gross_prices:
        if tipo.gross_prices:
            raise _CaseProblem("las boletas se certifican con su propio set (API REST de boletas)")
        raise _CaseProblem(f"el set de boletas trae un caso que no es boleta: «{case.document}»")
    if tipo.gross_prices:
        return _boleta(case, tipo)
    assumptions: list[str] = []
    references = [_set_reference(case)]
    if case.reference is not None:
        return _nota(case, tipo, planned, references, assumptions)
    if tipo.is_note:
        raise _CaseProblem("una nota sin REFERENCIA a otro caso")
    lines = [_line(case, n, item, tipo, assumptions) for n, item in enumerate(case.items, 1)]
    if not lines:
        raise _CaseProblem("el caso no trae ítems")
    header: dict[str, Any] = {}
    if case.global_discount_pct:
        header |= {"global_discount_type": "%", "global_discount_value": case.global_discount_pct}
    receiver, country = Receiver.DEFAULT, ""
    if tipo is TipoDte.GUIA_DESPACHO:
        if case.ind_traslado is None:
            raise _CaseProblem("la guía no indica el MOTIVO del traslado")
        header["ind_traslado"] = case.ind_traslado
        header["tipo_despacho"] = case.tipo_despacho
        if IndTraslado(case.ind_traslado).receiver_is_issuer:
            receiver = Receiver.ISSUER
    if tipo.is_export:
        export_header, country = _export(case, lines, rates, assumptions)
        header |= export_header
        receiver = Receiver.FOREIGN
        for name in case.customs_references:
            references.append(_customs_reference(name, assumptions))
        if header.get("ind_servicio") == 4 and not any(r.tipo_doc_ref == "813" for r in references):
            references.append(_customs_reference("PASAPORTE", assumptions))
    return PlannedDocument(
        caso=case.caso,
        tipo=int(tipo),
        lines=tuple(lines),
        header=header,
        receiver=receiver,
        country=country,
        references=tuple(references),
        assumptions=tuple(assumptions),
    )


def _boleta(case: Case, tipo: TipoDte) -> PlannedDocument:
    """A case of the boleta set: its items at the set's prices, which include IVA (a boleta's
    unit_price is gross), exempt where the set says so (every line of a 41)."""
    if case.reference is not None:
        raise _CaseProblem("una boleta con REFERENCIA a otro caso")
    assumptions: list[str] = []
    lines = [_line(case, n, item, tipo, assumptions) for n, item in enumerate(case.items, 1)]
    if not lines:
        raise _CaseProblem("el caso no trae ítems")
    header: dict[str, Any] = {}
    if case.global_discount_pct:
        header |= {"global_discount_type": "%", "global_discount_value": case.global_discount_pct}
    return PlannedDocument(
        caso=case.caso,
        tipo=int(tipo),
        lines=tuple(lines),
        header=header,
        receiver=Receiver.ANONYMOUS,
        references=(_boleta_set_reference(case),),
        assumptions=tuple(assumptions),
    )


def _line(case: Case, n: int, item: Item, tipo: TipoDte, assumptions: list[str]) -> dict[str, Any]:
    quantity, price = item.quantity, item.price
    if quantity is None and item.line_value is not None:
        quantity, price = Decimal(1), item.line_value
    if quantity is None:
        raise _CaseProblem(f"el ítem «{item.name}» no trae cantidad")
    discount = item.discount_pct or case.line_discounts.get(n) or Decimal(0)
    line = {
        "name": item.name[:80],
        "quantity": quantity,
        "unit": item.unit,
        "unit_price": price,
        "discount_pct": discount,
        "is_exempt": item.exempt or tipo.exempt_only or tipo.is_export,
    }
    if price is None and tipo is not TipoDte.GUIA_DESPACHO:
        raise _CaseProblem(f"el ítem «{item.name}» no trae precio")
    return line


def _nota(
    case: Case,
    tipo: TipoDte,
    planned: Mapping[str, PlannedDocument],
    references: list[PlannedReference],
    assumptions: list[str],
) -> PlannedDocument:
    assert case.reference is not None
    target = planned.get(case.reference.caso)
    if target is None:
        raise _CaseProblem(f"se refiere al caso {case.reference.caso}, que no está antes en el set")
    if not tipo.is_note:
        raise _CaseProblem(f"un {doc_type(tipo).noun} con REFERENCIA a otro caso")
    code = cod_ref_for(case.reference.razon)
    razon = (case.reference.razon or "").strip()
    header: dict[str, Any] = {}
    export_keys = ("moneda", "tipo_cambio", "forma_pago_exportacion", "ind_servicio", "aduana")
    if tipo.is_export:
        header = {k: target.header[k] for k in export_keys if k in target.header}
        aduana = dict(header.get("aduana") or {})
        if code is not CodRef.ANULA:  # only an annulment gives back the freight and insurance
            aduana.pop("flete", None)
            aduana.pop("seguro", None)
        header["aduana"] = aduana
    if code is CodRef.ANULA:
        lines = list(target.lines)
        adjustments = (
            "global_discount_type",
            "global_discount_value",
            "global_surcharge_type",
            "global_surcharge_value",
        )
        header |= {k: target.header[k] for k in adjustments if k in target.header}
    elif code is CodRef.CORRIGE_TEXTO:
        exempt = tipo.exempt_only or tipo.is_export or all(ln["is_exempt"] for ln in target.lines)
        lines = [
            {
                "name": (razon or "Corrige texto")[:80],
                "quantity": Decimal(1),
                "unit": "",
                "unit_price": Decimal(0),
                "discount_pct": Decimal(0),
                "is_exempt": exempt,
            }
        ]
    else:
        lines = _returned_lines(case, target, assumptions)
        if target.header.get("global_discount_type") == "%":
            header["global_discount_type"] = "%"
            header["global_discount_value"] = target.header["global_discount_value"]
            assumptions.append(
                "La devolución lleva el mismo descuento global porcentual del documento."
            )
    references.append(
        PlannedReference(
            tipo_doc_ref=str(target.tipo),
            razon_ref=razon[:90],
            cod_ref=int(code),
            ref_caso=target.caso,
        )
    )
    return PlannedDocument(
        caso=case.caso,
        tipo=int(tipo),
        lines=tuple(lines),
        header=header,
        receiver=target.receiver,
        country=target.country,
        references=tuple(references),
        assumptions=tuple(assumptions),
    )


def _key(name: str) -> str:
    return re.sub(r"\s+", " ", _normalize(name)).strip()


def _returned_lines(
    case: Case, target: PlannedDocument, assumptions: list[str]
) -> list[dict[str, Any]]:
    if not case.items:
        raise _CaseProblem("una nota que corrige montos sin ítems")
    by_name = {_key(line["name"]): line for line in target.lines}
    lines = []
    for n, item in enumerate(case.items, 1):
        original = by_name.get(_key(item.name))
        if original is None and n <= len(target.lines):
            original = target.lines[n - 1]
            assumptions.append(
                f"«{item.name}» se tomó como la línea {n} del caso {target.caso} "
                f"(«{original['name']}»)."
            )
        if original is None:
            raise _CaseProblem(f"«{item.name}» no es un ítem del caso {target.caso}")
        quantity = item.quantity if item.quantity is not None else original["quantity"]
        price = item.price if item.price is not None else original["unit_price"]
        lines.append({**original, "quantity": quantity, "unit_price": price})
    return lines


# --- Exports --------------------------------------------------------------------------------

# The set's words for each customs field -> (the key in erp.exports' aduana data, its table).
_ADUANA_WORDS = (
    ("MODALIDAD DE VENTA", "modalidad_venta", "modalidades"),
    ("CLAUSULA DE VENTA", "clausula_venta", "clausulas"),
    ("VIA DE TRANSPORTE", "via_transporte", "vias_transporte"),
    ("PUERTO DE EMBARQUE", "puerto_embarque", "puertos"),
    ("PUERTO DE DESEMBARQUE", "puerto_desembarque", "puertos"),
    ("UNIDAD DE MEDIDA DE TARA", "unidad_tara", "unidades"),
    ("UNIDAD PESO BRUTO", "unidad_peso_bruto", "unidades"),
    ("UNIDAD PESO NETO", "unidad_peso_neto", "unidades"),
    ("TIPO DE BULTO", "tipo_bultos", "bultos"),
)
_CUSTOMS_DOCUMENTS = (  # Referencia TpoDocRef of customs documents (EXPORTS.md §4)
    ("DUS", "807"),
    ("CONOCIMIENTO DE EMBARQUE", "808"),
    ("B/L", "808"),
    ("AWB", "809"),
    ("MIC", "810"),
    ("MANIFIESTO INTERNACIONAL", "810"),
    ("CARTA DE PORTE", "811"),
    ("RESOLUCION SNA", "812"),
    ("RESOLUCION DEL SNA", "812"),
    ("PASAPORTE", "813"),
)


def _find_code(table: str, name: str) -> str | None:
    wanted = _key(name)
    rows = siicodes.table(table).values()
    exact = [row.code for row in rows if _key(row.name) == wanted]
    if exact:
        return exact[0]
    described = [
        row.code for row in rows if _key(row.extra.get("description", "")) == wanted and wanted
    ]
    return described[0] if described else None


def _value(case: Case, *words: str) -> str:
    for key, value in case.export.items():
        if any(re.match(re.escape(w), _key(key)) for w in words):
            return value
    return ""


def _amount(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip().replace(",", "."))
    except ArithmeticError:
        return None


def _country(case: Case) -> str:
    name = _value(case, "PAIS RECEPTOR", "PAIS DESTINO", "NACIONALIDAD")
    if not name:
        return ""
    code = _find_code("paises", name)
    if code is None:
        raise _CaseProblem(f"país «{name}» no está en la tabla de países de Aduana")
    return code


def _port(name: str, country: str, assumptions: list[str]) -> str:
    code = _find_code("puertos", name)
    if code is not None:
        return code
    if country:
        country_name = _key(siicodes.name_of("paises", country))
        others = [
            row
            for row in siicodes.table("puertos").values()
            if _key(row.name).startswith("OTROS PUERTOS DE ")
            and country_name.startswith(_key(row.name)[len("OTROS PUERTOS DE ") :].split(" NO")[0])
        ]
        if others:
            assumptions.append(
                f"El puerto «{name}» no está en la tabla de Aduana: se usa {others[0].code} "
                f"({others[0].name})."
            )
            return others[0].code
    raise _CaseProblem(f"puerto «{name}» no está en la tabla de puertos de Aduana")


def _export(
    case: Case, lines: list[dict[str, Any]], rates: Mapping[str, Decimal], assumptions: list[str]
) -> tuple[dict[str, Any], str]:
    moneda = _key(_value(case, "MONEDA"))
    if not moneda:
        raise _CaseProblem("la exportación no indica la MONEDA DE LA OPERACION")
    try:
        currency = siicodes.currency(moneda)
    except KeyError:
        raise _CaseProblem(f"moneda «{moneda}» no está en la tabla de monedas") from None
    rate = rates.get(currency.name)
    if rate is None:
        raise _CaseProblem(f"falta el tipo de cambio de {currency.name} para esta corrida")
    assumptions.append(
        f"Tipo de cambio {currency.name}: {format_decimal(rate)} pesos (de la corrida)."
    )
    country = _country(case)
    aduana: dict[str, Any] = {}
    for words, key, table in _ADUANA_WORDS:
        name = _value(case, words)
        if not name:
            continue
        if key == "puerto_desembarque":  # abroad: its country's "OTROS PUERTOS" if unlisted
            code: str | None = _port(name, country, assumptions)
        else:
            code = _find_code(table, name)
        if code is None:
            raise _CaseProblem(f"«{name}» ({words.lower()}) no está en la tabla de Aduana")
        aduana[key] = int(code)
    if country:
        aduana["pais_receptor"] = aduana["pais_destino"] = int(country)
    for words, key in (
        ("TOTAL CLAUSULA", "total_clausula"),
        ("FLETE", "flete"),
        ("SEGURO", "seguro"),
    ):
        text = _value(case, words)
        if text:
            amount = _amount(text)
            if amount is None:
                raise _CaseProblem(f"monto ilegible en {words.lower()}: «{text}»")
            aduana[key] = format(amount, "f")
    bultos = _value(case, "TOTAL BULTOS")
    if bultos:
        aduana["total_bultos"] = int(bultos)
    elif "tipo_bultos" in aduana or not _is_service(case):
        aduana["total_bultos"] = 1
        assumptions.append("El set no indica el total de bultos: se declara 1.")
    else:
        aduana["total_bultos"] = 1
        assumptions.append("Servicio sin bultos en el set: se declara 1 (TotBultos).")
    header: dict[str, Any] = {
        "moneda": currency.name,
        "tipo_cambio": rate,
        "aduana": aduana,
    }
    forma = _value(case, "FORMA DE PAGO")
    if forma:
        code = _find_code("formas_pago_exportacion", forma)
        if code is None:
            raise _CaseProblem(f"forma de pago de exportación «{forma}» no está en la tabla")
        header["forma_pago_exportacion"] = int(code)
    if _is_service(case):
        header["ind_servicio"] = 4 if _is_lodging(case) else 3
        if "via_transporte" not in aduana and header["ind_servicio"] != 4:
            raise _CaseProblem("un servicio de exportación sin VIA DE TRANSPORTE")
    if case.line_surcharge_pct:
        header["global_surcharge_type"] = "%"
        header["global_surcharge_value"] = case.line_surcharge_pct
        assumptions.append(
            f"Recargo de {format_decimal(case.line_surcharge_pct)} % en la línea por comisiones "
            "en el exterior: "
            "se emite como recargo global porcentual (las líneas no llevan recargo propio aquí)."
        )
    if case.commission_pct_of_clause:
        clause = aduana.get("total_clausula")
        if clause is None:
            raise _CaseProblem("comisiones sobre el total de la cláusula, sin TOTAL CLAUSULA")
        amount = (Decimal(clause) * case.commission_pct_of_clause / 100).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        header["global_surcharge_type"] = "$"
        header["global_surcharge_value"] = amount
        assumptions.append(
            f"Comisiones en el extranjero: {format_decimal(case.commission_pct_of_clause)} % de "
            f"{format_decimal(Decimal(clause))} = {format_decimal(amount)}, como recargo global."
        )
    del lines
    return header, country


def _is_service(case: Case) -> bool:
    return bool(case.items) and all(
        item.quantity is None and item.line_value is not None for item in case.items
    )


def _is_lodging(case: Case) -> bool:
    return any(re.search(r"ALOJAMIENTO|HOTEL|HOSPEDAJE", _normalize(i.name)) for i in case.items)


def _customs_reference(name: str, assumptions: list[str]) -> PlannedReference:
    norm = _key(name)
    code = next(
        (
            c
            for words, c in _CUSTOMS_DOCUMENTS
            if re.search(rf"(?<!\w){re.escape(words)}(?!\w)", norm)
        ),
        None,
    )
    if code is None:
        raise _CaseProblem(f"documento aduanero de referencia desconocido: «{name}»")
    assumptions.append(f"Referencia {name}: tipo {code}, folio 1 (el set no trae su número).")
    return PlannedReference(tipo_doc_ref=code, folio_ref="1", razon_ref=name[:90])
