"""The set de pruebas the SII hands a company at the start of certification, read into sets and
cases (DOMAIN.md §16; the layout of /work/shared/sii/samples/certification/). Pure: no Django.

A real set file is ISO-8859-1 text with CRLF, tabs and runs of spaces between columns; its
wording and spacing change from one set to another, and a word may arrive double-encoded
(`ATENCIï¿½N`). So nothing here matches whole sentences: every line is normalised (accents
removed, upper case, damaged characters marked `?`) and recognised by its keywords, items by
the columns their header names, and whatever cannot be read is listed with its line number
(`SetFile.unreadable`), never silently dropped.

The boleta set comes as a file of its own, in its own layout (dte/core/CERTIFICATION.md, "The
boleta set"): a header "SII SET DE PRUEBA DE BOLETA ELECTRONICA …" without a número de atención,
cases "CASO-1", "CASO-2"… without a DOCUMENTO line (the set's name says it), prices with IVA
included, and OBSERVACION lines that make an item exempt or give its unit of measure.
"""

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from erp.doctypes import REGISTRY


class SetKind(StrEnum):
    BASICO = "basico"
    FACTURA_EXENTA = "factura_exenta"
    LIBRO_VENTAS = "libro_ventas"
    LIBRO_COMPRAS = "libro_compras"
    GUIA_DESPACHO = "guia_despacho"
    LIBRO_GUIAS = "libro_guias"
    EXPORTACION = "exportacion"
    FACTURA_COMPRA = "factura_compra"
    BOLETA = "boleta"
    OTHER = "otro"


SET_KIND_LABELS = {
    SetKind.BASICO: "Set básico",
    SetKind.FACTURA_EXENTA: "Set factura exenta",
    SetKind.LIBRO_VENTAS: "Libro de ventas",
    SetKind.LIBRO_COMPRAS: "Libro de compras",
    SetKind.GUIA_DESPACHO: "Set guía de despacho",
    SetKind.LIBRO_GUIAS: "Libro de guías",
    SetKind.EXPORTACION: "Set documentos de exportación",
    SetKind.FACTURA_COMPRA: "Set factura de compra",
    SetKind.BOLETA: "Set boleta electrónica",
    SetKind.OTHER: "Otro set",
}


@dataclass(frozen=True)
class Item:
    name: str  # as the set writes it, "Tornillo AFECTO" included
    quantity: Decimal | None = None
    price: Decimal | None = None  # PRECIO UNITARIO (the boleta set's includes IVA)
    unit: str = ""  # UNIDAD MEDIDA, or what an OBSERVACION gives ("Kg")
    discount_pct: Decimal | None = None  # DESCUENTO ITEM
    line_value: Decimal | None = None  # VALOR LINEA: the line's amount, with no quantity
    exempt: bool = False  # "EXENTO" in the name, or an OBSERVACION that says so


@dataclass(frozen=True)
class CaseReference:
    """A case that modifies the document of another case of the same file."""

    tipo: int | None  # the referenced document's type, by its name
    caso: str  # "5120001-1"
    razon: str = ""  # RAZON REFERENCIA, as written


@dataclass(frozen=True)
class Case:
    caso: str  # "<atención>-<n>"
    line: int  # where its CASO line is (1-based)
    document: str  # the type as written
    tipo: int | None  # its code (None: a name this reader does not know; see problems)
    items: tuple[Item, ...] = ()
    global_discount_pct: Decimal | None = None  # DESCUENTO GLOBAL ITEMES AFECTOS
    reference: CaseReference | None = None
    motivo: str = ""  # a guía's MOTIVO, as written
    ind_traslado: int | None = None  # … as IndTraslado
    traslado_por: str = ""  # a guía's TRASLADO POR, as written
    tipo_despacho: int | None = None  # … as TipoDespacho
    export: dict[str, str] = field(default_factory=dict)  # "MONEDA DE LA OPERACION": "EURO"
    customs_references: tuple[str, ...] = ()  # REFERENCIA: DUS, AWB, MIC, RESOLUCION SNA
    line_discounts: dict[int, Decimal] = field(default_factory=dict)  # DESCUENTO LINEA # n: p%
    line_surcharge_pct: Decimal | None = None  # "%8 RECARGO EN LA LINEA DE ITEM POR COMISIONES"
    commission_pct_of_clause: Decimal | None = None  # COMISIONES EN EL EXTRANJERO: p% DEL TOTAL
    prices_from_reference: bool = False  # "EL PRECIO UNITARIO … ES EL MISMO DE LA FACTURA"
    observations: tuple[str, ...] = ()  # OBSERVACION lines, as written
    problems: tuple[str, ...] = ()

    @property
    def number(self) -> int:
        """The case's number in its set: 1 for "5120001-1", and for the boleta set's "1"."""
        return int(self.caso.rsplit("-", 1)[-1])


@dataclass(frozen=True)
class PurchaseRow:
    """A row of the SET LIBRO DE COMPRAS."""

    line: int
    document: str  # as written: "FACTURA", "FACTURA ELECTRONICA", "NOTA DE CREDITO"…
    tipo: int | None
    folio: int
    observation: str  # as written
    exento: int = 0
    afecto: int = 0  # the net taxed amount
    # What the observation says, in this reader's words:
    uso_comun: bool = False  # "IVA USO COMUN": credited by the set's factor
    entrega_gratuita: bool = False  # "ENTREGA GRATUITA": IVA no recuperable
    retencion_total: bool = False  # "RETENCION TOTAL DEL IVA": factura de compra, IVA retained
    referenced_folio: int | None = None  # a nota's "… A FACTURA 118"
    referenced_tipo: int | None = None


@dataclass(frozen=True)
class TestSet:
    kind: SetKind
    title: str  # as written, "SET BASICO"
    atencion: str  # NUMERO DE ATENCION ("" in the boleta set, which has none)
    line: int
    cases: tuple[Case, ...] = ()
    purchases: tuple[PurchaseRow, ...] = ()
    factor: Decimal | None = None  # the libro de compras' factor de proporcionalidad
    guia_states: dict[int, str] = field(default_factory=dict)  # case n -> facturada / anulada
    instructions: tuple[str, ...] = ()  # the set's own text, as written

    @property
    def label(self) -> str:
        return SET_KIND_LABELS[self.kind]

    @property
    def name(self) -> str:
        """The set's name for files and envelopes: "SET_BASICO", "EXPORTACION_2"."""
        words = re.sub(r"[^A-Z0-9]+", "_", _normalize(self.title)).strip("_")
        return words or self.kind.value.upper()


@dataclass(frozen=True)
class UnreadLine:
    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class SetFile:
    sets: tuple[TestSet, ...]
    unreadable: tuple[UnreadLine, ...]
    preamble: tuple[str, ...] = ()

    def find(self, kind: SetKind) -> tuple[TestSet, ...]:
        return tuple(s for s in self.sets if s.kind is kind)

    def case(self, caso: str) -> Case | None:
        return next((c for s in self.sets for c in s.cases if c.caso == caso), None)

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, StrEnum):
        return value.value
    return value


class SetFileError(ValueError):
    """The file is not a set de pruebas at all (nothing in it could be read)."""


# --- Text -----------------------------------------------------------------------------------


def decode(data: bytes | str) -> str:
    """The file's text: ISO-8859-1 as the SII writes it (UTF-8 if the file was re-saved so)."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def _repair(line: str) -> str:
    """Undo one level of double encoding (UTF-8 read as Latin-1) when that is what it is."""
    if not any(ch in line for ch in "ÃÂï"):
        return line
    try:
        return line.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return line


_DAMAGE = re.compile(r"[^\x20-\x7e\t]+")


def _normalize(text: str) -> str:
    """Upper case without accents; a damaged character (or run of them) becomes one `?`."""
    text = _repair(text).replace("\ufffd", "?")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _DAMAGE.sub("?", text.upper())
    return re.sub(r"\?+", "?", text)


def _fuzzy(keyword: str) -> str:
    """A regex for a keyword whose vowels and Ñ may have arrived damaged (`?`), with any run of
    spaces between its words."""
    parts = []
    for ch in keyword:
        if ch == " ":
            parts.append(r"\s+")
        elif ch in "AEIOUN":
            parts.append(f"(?:{ch}|\\?)")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


def _has(norm: str, keyword: str) -> bool:
    return re.search(_fuzzy(keyword), norm) is not None


def _columns(raw: str) -> list[str]:
    """A line's cells: separated by tabs or by two or more spaces."""
    return [c.strip() for c in re.split(r"\t+|\s{2,}", raw.strip()) if c.strip()]


# --- Document names -------------------------------------------------------------------------


def _type_names() -> list[tuple[str, int]]:
    """Every registry name, normalised, longest first so that "NOTA DE CREDITO DE EXPORTACION
    ELECTRONICA" wins over "NOTA DE CREDITO ELECTRONICA"."""
    names = [(_normalize(spec.name), code) for code, spec in REGISTRY.items()]
    return sorted(names, key=lambda pair: -len(pair[0]))


_TYPE_NAMES = _type_names()
_ALIASES = {
    "FACTURA EXENTA ELECTRONICA": 34,
    "FACTURA NO AFECTA ELECTRONICA": 34,
    "GUIA DE DESPACHO": 52,  # in a set, a guía is electronic: the set issues it
    "BOLETA NO AFECTA O EXENTA ELECTRONICA": 41,
    "BOLETA ELECTRONICA NO AFECTA O EXENTA": 41,
    "BOLETA ELECTRONICA EXENTA": 41,
}


def document_type(name: str, *, electronic: bool | None = None) -> int | None:
    """A document type by its name as a set writes it ("FACTURA  ELECTRONICA", "NOTA DE
    CREDITO"). Paper types are found only when `electronic` is False or None and the name
    says nothing of ELECTRONICA; an electronic document is preferred when `electronic`."""
    norm = re.sub(r"\s+", " ", _normalize(name)).strip(" :.")
    norm = re.sub(r"(?:\?|[A-Z])?LECTR(?:O|\?)NICA", "ELECTRONICA", norm)
    candidates = [norm]
    if electronic and "ELECTRONICA" not in norm:
        candidates.insert(0, f"{norm} ELECTRONICA")
    for candidate in candidates:
        for alias, code in _ALIASES.items():
            if candidate == alias:
                return code
        for known, code in _TYPE_NAMES:
            if candidate == known:
                return code
    if electronic is not False:
        for alias, code in _ALIASES.items():
            if norm.startswith(alias):
                return code
        for known, code in _TYPE_NAMES:
            if norm.startswith(known) and ("ELECTRONICA" in known or not electronic):
                return code
    return None


# --- Guías: MOTIVO and TRASLADO POR ---------------------------------------------------------

# IndTraslado by the words of the set's MOTIVO (DTE_v10.xsd IndTraslado; DOMAIN.md §16).
_MOTIVOS = (
    ("VENTA POR EFECTUAR", 2),
    ("CONSIGNACION", 3),
    ("ENTREGA GRATUITA", 4),
    ("TRASLADO INTERNO", 5),
    ("ENTRE BODEGAS", 5),
    ("ENTRE LOCALES", 5),
    ("DEVOLUCION", 7),
    ("TRASLADO PARA EXPORTACION", 8),
    ("VENTA PARA EXPORTACION", 9),
    ("VENTA", 1),
    ("OTROS TRASLADOS", 6),
    ("TRASLADO", 6),
)
# TipoDespacho by the words of TRASLADO POR.
_DESPACHOS = (
    ("A OTRAS INSTALACIONES", 3),
    ("LOCAL DEL CLIENTE", 2),
    ("INSTALACIONES DEL CLIENTE", 2),
    ("EMISOR", 2),
    ("CLIENTE", 1),
    ("RECEPTOR", 1),
)


def _code_by_words(norm: str, table: tuple[tuple[str, int], ...]) -> int | None:
    return next((code for words, code in table if _has(norm, words)), None)


# --- Reading --------------------------------------------------------------------------------

_SET_HEADER = re.compile(
    _fuzzy("SET ") + r"(?P<title>.+?)\s*[-–:]*\s*"
    r"(?:N(?:U|\?)MERO\s+DE\s+|N[^A-Z0-9\s]?\s*(?:DE\s+)?)?ATENCI(?:O|\?)N\s*:?\s*(?P<n>\d+)"
)
# The boleta set's header: no "SET <title> … ATENCION n" but "SII SET DE PRUEBA DE BOLETA …",
# usually without a número de atención.
_BOLETA_SET_HEADER = re.compile(
    r"^\s*(?:SII\s+)?"
    + _fuzzy("SET DE PRUEBA")
    + r"S?\s+(?:DE\s+)?(?P<title>"
    + _fuzzy("BOLETA")
    + r"\b.*?)\s*(?:[-–:]*\s*(?:N(?:U|\?)MERO\s+DE\s+|N[^A-Z0-9\s]?\s*(?:DE\s+)?)?"
    r"ATENCI(?:O|\?)N\s*:?\s*(?P<n>\d+))?\s*$"
)
_CASE = re.compile(r"^\s*" + _fuzzy("CASO") + r"\s+(?P<caso>\d+\s*-\s*\d+)\s*:?\s*$")
# The boleta set numbers its cases alone: "CASO-1" (also read: "CASO 1", "CASO N° 1").
_NUMBERED_CASE = re.compile(
    r"^\s*" + _fuzzy("CASO") + r"\s*(?:[-–?]|N[^A-Z0-9\s]?|\s)\s*(?P<caso>\d+)\s*:?\s*$"
)
# OBSERVACION of a case of the boleta set: "El item 2 es un servicio exento.", "Se debe informar
# en el XML Unidad de medida en Kg."
_OBSERVED_ITEM = re.compile(r"\bITEM\s*N?\W?\s*(\d+)\b")
_OBSERVED_UNIT = re.compile(
    r"UNIDAD\s+DE\s+MEDIDA\s+(?:EN\s+)?[\"'«]?(?P<unit>[A-Z]{1,4})\b", re.IGNORECASE
)
_THOUSANDS = re.compile(r"^\d{1,3}(?:\.\d{3})+$")
_DECORATION = re.compile(r"^[\s=\-_*]+$")
_NUMBER = re.compile(r"^-?\d+(?:[.,]\d+)?$")
_PERCENT = re.compile(r"^(?P<n>\d+(?:[.,]\d+)?)\s*%$|^%\s*(?P<m>\d+(?:[.,]\d+)?)$")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _percent(text: str) -> Decimal | None:
    match = _PERCENT.match(text.strip())
    if not match:
        return None
    return _decimal(match.group("n") or match.group("m"))


def _set_kind(norm_title: str) -> SetKind:
    checks = (
        ("LIBRO DE VENTAS", SetKind.LIBRO_VENTAS),
        ("LIBRO DE COMPRAS", SetKind.LIBRO_COMPRAS),
        ("LIBRO DE GUIAS", SetKind.LIBRO_GUIAS),
        ("EXPORTACION", SetKind.EXPORTACION),
        ("FACTURA DE COMPRA", SetKind.FACTURA_COMPRA),
        ("GUIA DE DESPACHO", SetKind.GUIA_DESPACHO),
        ("FACTURA EXENTA", SetKind.FACTURA_EXENTA),
        ("BOLETA", SetKind.BOLETA),
        ("BASICO", SetKind.BASICO),
    )
    return next((kind for words, kind in checks if _has(norm_title, words)), SetKind.OTHER)


@dataclass
class _Line:
    number: int
    raw: str
    norm: str


class _Reader:
    def __init__(self, text: str) -> None:
        raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.lines = [_Line(n, raw.rstrip(), _normalize(raw)) for n, raw in enumerate(raw_lines, 1)]
        self.unreadable: list[UnreadLine] = []

    def fail(self, line: _Line, reason: str) -> None:
        self.unreadable.append(UnreadLine(line.number, line.raw.strip(), reason))

    def read(self) -> SetFile:
        starts = [i for i, ln in enumerate(self.lines) if _header(ln.norm) is not None]
        preamble = tuple(
            ln.raw.strip() for ln in self.lines[: starts[0] if starts else 0] if ln.raw.strip()
        )
        sets = []
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(self.lines)
            sets.append(self._set(self.lines[start], self.lines[start + 1 : end]))
        if not sets:
            for ln in self.lines:
                if ln.raw.strip():
                    self.fail(ln, "fuera de un set (no se encontró ningún «SET … ATENCION n»)")
        return SetFile(tuple(sets), tuple(self.unreadable), preamble)

    # -- sets

    def _set(self, header: _Line, body: list[_Line]) -> TestSet:
        found = _header(header.norm)
        assert found is not None
        title_norm, atencion = found
        kind = _set_kind(title_norm)
        # The boleta set's cases say no DOCUMENTO: the set's name does ("BOLETA ELECTRONICA DE
        # VENTAS Y SERVICIOS" is a 39, "BOLETA NO AFECTA O EXENTA ELECTRONICA" a 41).
        named = re.search(_fuzzy("BOLETA") + r".*", title_norm) if kind is SetKind.BOLETA else None
        document = named.group(0) if named else ""
        case_starts = [i for i, ln in enumerate(body) if _case_id(ln.norm, kind) is not None]
        head = body[: case_starts[0]] if case_starts else body
        instructions: list[str] = []
        purchases: tuple[PurchaseRow, ...] = ()
        factor = None
        guia_states: dict[int, str] = {}
        if kind is SetKind.LIBRO_COMPRAS:
            purchases, factor, instructions = self._purchases(head)
        else:
            for ln in head:
                if ln.raw.strip() and not _DECORATION.match(ln.raw):
                    instructions.append(ln.raw.strip())
                    if kind is SetKind.LIBRO_GUIAS:
                        self._guia_state(ln, guia_states)
        cases = []
        for k, start in enumerate(case_starts):
            end = case_starts[k + 1] if k + 1 < len(case_starts) else len(body)
            case, trailing = self._case(body[start], body[start + 1 : end], kind, document)
            cases.append(case)
            instructions += trailing
        return TestSet(
            kind=kind,
            title=title_norm,
            atencion=atencion,
            line=header.number,
            cases=tuple(cases),
            purchases=purchases,
            factor=factor,
            guia_states=guia_states,
            instructions=tuple(instructions),
        )

    def _guia_state(self, line: _Line, states: dict[int, str]) -> None:
        match = re.search(_fuzzy("CASO") + r"\s+(\d+)", line.norm)
        if not match:
            return
        if _has(line.norm, "ANULAD"):
            states[int(match.group(1))] = "anulada"
        elif _has(line.norm, "FACTUR"):
            states[int(match.group(1))] = "facturada"

    # -- the libro de compras' table

    def _purchases(
        self, lines: list[_Line]
    ) -> tuple[tuple[PurchaseRow, ...], Decimal | None, list[str]]:
        rows: list[PurchaseRow] = []
        instructions: list[str] = []
        text = " ".join(ln.norm for ln in lines)
        factor_match = re.search(r"PROPORCIONALIDAD.*?(\d+[.,]\d+)", text)
        factor = _decimal(factor_match.group(1)) if factor_match else None
        rules = [i for i, ln in enumerate(lines) if re.match(r"^\s*={5,}\s*$", ln.raw)]
        # The table: between its header's closing rule and the rule after the rows.
        if len(rules) >= 3:
            table, outside = lines[rules[1] + 1 : rules[2]], lines[: rules[0]] + lines[rules[2] :]
        else:
            table, outside = [], lines
        for ln in outside:
            if ln.raw.strip() and not _DECORATION.match(ln.raw):
                instructions.append(ln.raw.strip())
        group: list[_Line] = []
        for ln in [*table, _Line(0, "", "")]:
            if ln.raw.strip():
                group.append(ln)
                continue
            if group:
                row = self._purchase_row(group)
                if row is not None:
                    rows.append(row)
                group = []
        return tuple(rows), factor, instructions

    def _purchase_row(self, group: list[_Line]) -> PurchaseRow | None:
        first = group[0]
        cells = _columns(first.raw)
        if len(group) != 3 or len(cells) < 2 or not cells[-1].isdigit():
            for ln in group:
                self.fail(
                    ln,
                    "fila del libro de compras: se esperaban tipo y folio, "
                    "observación y montos en tres líneas",
                )
            return None
        name = " ".join(cells[:-1])
        tipo = document_type(name, electronic=False)
        observation = group[1].raw.strip()
        amounts = _columns(group[2].raw)
        numbers = [int(a) for a in amounts if a.isdigit()]
        if len(numbers) != len(amounts) or not 1 <= len(numbers) <= 2:
            self.fail(group[2], "montos del libro de compras: se esperaban uno o dos números")
            return None
        if len(numbers) == 2:
            exento, afecto = numbers
        elif group[2].raw[:1] in "\t ":  # only the second column (MONTO AFECTO) is filled
            exento, afecto = 0, numbers[0]
        else:
            exento, afecto = numbers[0], 0
        if tipo is None:
            self.fail(first, f"tipo de documento desconocido: «{name}»")
        obs = group[1].norm
        referenced = re.search(r"(FACTURA(?:\s+ELECTR\S*)?)\s+(\d+)\s*$", obs)
        return PurchaseRow(
            line=first.number,
            document=name,
            tipo=tipo,
            folio=int(cells[-1]),
            observation=observation,
            exento=exento,
            afecto=afecto,
            uso_comun=_has(obs, "USO COMUN"),
            entrega_gratuita=_has(obs, "ENTREGA GRATUITA"),
            retencion_total=_has(obs, "RETENCION TOTAL"),
            referenced_folio=int(referenced.group(2)) if referenced else None,
            referenced_tipo=document_type(referenced.group(1), electronic=False)
            if referenced
            else None,
        )

    # -- cases

    def _case(
        self, header: _Line, body: list[_Line], kind: SetKind, document: str = ""
    ) -> tuple[Case, list[str]]:
        caso = _case_id(header.norm, kind)
        assert caso is not None
        state: dict[str, Any] = {
            "document": document,
            "tipo": document_type(document, electronic=True) if document else None,
            "items": [],
            "export": {},
            "customs": [],
            "line_discounts": {},
            "observations": [],
            "problems": [],
            "whole_prices": kind is SetKind.BOLETA,
        }
        trailing: list[str] = []
        lines = iter(body)
        in_instructions = False
        for ln in lines:
            text, norm = ln.raw.strip(), ln.norm.strip()
            if not text or _DECORATION.match(ln.raw):
                continue
            if (
                in_instructions
                or norm.startswith("(**)")
                or _has(norm, "INSTRUCCIONES")
                or _has(norm, "OBSERVACIONES GENERALES")
            ):
                in_instructions = True  # the set's closing notes, after its last case
                trailing.append(text)
                continue
            if not self._case_line(ln, lines, state):
                self.fail(ln, f"no se reconoce en el caso {caso}")
        for line, observation in state["observations"]:
            self._observe(line, observation, caso, state)
        problems = state["problems"]
        if not state["document"]:
            problems.append("el caso no dice qué DOCUMENTO es")
        elif state["tipo"] is None:
            problems.append(f"tipo de documento desconocido: «{state['document']}»")
        case = Case(
            caso=caso,
            line=header.number,
            document=state["document"],
            tipo=state["tipo"],
            items=tuple(state["items"]),
            global_discount_pct=state.get("global_discount_pct"),
            reference=state.get("reference"),
            motivo=state.get("motivo", ""),
            ind_traslado=state.get("ind_traslado"),
            traslado_por=state.get("traslado_por", ""),
            tipo_despacho=state.get("tipo_despacho"),
            export=state["export"],
            customs_references=tuple(state["customs"]),
            line_discounts=state["line_discounts"],
            line_surcharge_pct=state.get("line_surcharge_pct"),
            commission_pct_of_clause=state.get("commission_pct_of_clause"),
            prices_from_reference=state.get("prices_from_reference", False),
            observations=tuple(text for _, text in state["observations"]),
            problems=tuple(problems),
        )
        return case, trailing

    def _case_line(self, ln: _Line, rest: Iterator[_Line], state: dict[str, Any]) -> bool:
        text, norm = ln.raw.strip(), ln.norm.strip()
        cells = _columns(ln.raw)
        key = re.sub(r"\s+", " ", norm.split(":")[0]).strip() if ":" in norm else ""
        value = text.split(":", 1)[1].strip() if ":" in text else ""
        if re.match(_fuzzy("DOCUMENTO") + r"\b", norm):
            state["document"] = " ".join(cells[1:]) or value
            state["tipo"] = document_type(state["document"], electronic=True)
            return True
        if re.match(_fuzzy("RAZON REFERENCIA"), norm):
            reference = state.get("reference")
            razon = " ".join(cells[2:] if cells[:2] == ["RAZON", "REFERENCIA"] else cells[1:])
            razon = razon or value
            if reference is None:
                state["problems"].append("RAZON REFERENCIA sin REFERENCIA")
                return True
            state["reference"] = CaseReference(reference.tipo, reference.caso, razon)
            return True
        if re.match(_fuzzy("REFERENCIA"), norm):
            target = re.search(
                r"^REFERENCIA\s*:?\s*(?P<name>.+?)\s+CORRESPONDIENTE\s+A\s+"
                + _fuzzy("CASO")
                + r"\s+(?P<caso>\d+\s*-\s*\d+)",
                norm,
            )
            if target:
                state["reference"] = CaseReference(
                    document_type(target.group("name"), electronic=True),
                    re.sub(r"\s+", "", target.group("caso")),
                )
            else:  # a customs document of an export: DUS, AWB, MIC, RESOLUCION SNA
                state["customs"].append(value or " ".join(cells[1:]))
            return True
        if re.match(r"^ITEM\b", norm) and len(cells) >= 2 and not state["items"]:
            self._items(cells, rest, state)
            return True
        if _has(norm, "DESCUENTO GLOBAL"):
            pct = next((p for c in cells for p in [_percent(c)] if p is not None), None)
            if pct is None:
                return False
            state["global_discount_pct"] = pct
            return True
        if re.match(_fuzzy("MOTIVO"), norm):
            state["motivo"] = value or " ".join(cells[1:])
            state["ind_traslado"] = _code_by_words(_normalize(state["motivo"]), _MOTIVOS)
            if state["ind_traslado"] is None:
                state["problems"].append(f"motivo del traslado desconocido: «{state['motivo']}»")
            return True
        if re.match(_fuzzy("TRASLADO POR"), norm):
            state["traslado_por"] = value or " ".join(cells[1:])
            state["tipo_despacho"] = _code_by_words(_normalize(state["traslado_por"]), _DESPACHOS)
            return True
        if _has(norm, "DESCUENTO LINEA"):
            found = re.search(r"#\s*(\d+)\s*:?\s*(\d+(?:[.,]\d+)?)\s*%", norm)
            if not found:
                return False
            state["line_discounts"][int(found.group(1))] = _decimal(found.group(2))
            return True
        if _has(norm, "COMISIONES EN EL EXTRANJERO") or _has(norm, "COMISIONES EN EL EXTERIOR"):
            rate = re.search(r"(?:%\s*(\d+(?:[.,]\d+)?)|(\d+(?:[.,]\d+)?)\s*%)", norm)
            if not rate:
                return False
            amount = _decimal(rate.group(1) or rate.group(2))
            if _has(norm, "RECARGO EN LA LINEA"):
                state["line_surcharge_pct"] = amount
            else:
                state["commission_pct_of_clause"] = amount
            return True
        if _has(norm, "PRECIO") and _has(norm, "MISMO"):
            state["prices_from_reference"] = True
            return True
        if re.match(_fuzzy("OBSERVACION") + r"\b", norm) and value:
            state["observations"].append((ln, value.strip().strip('"“”«»').strip()))
            return True
        if key and value:
            state["export"][key] = value
            return True
        return False

    def _items(self, header: list[str], rest: Iterator[_Line], state: dict[str, Any]) -> None:
        columns = [_normalize(h) for h in header[1:]]
        for ln in rest:
            if not ln.raw.strip() or _DECORATION.match(ln.raw):
                return
            cells = _columns(ln.raw)
            item = self._item(cells, columns, whole_prices=state["whole_prices"])
            if item is None:
                self.fail(ln, "ítem: no se pudo leer la línea según las columnas del encabezado")
                continue
            state["items"].append(item)

    def _observe(self, line: _Line, observation: str, caso: str, state: dict[str, Any]) -> None:
        """Apply a case's OBSERVACION to its items, sentence by sentence: "El item 2 es un
        servicio exento" (IndExe), "… Unidad de medida en Kg" (UnmdItem, as written). A
        sentence that says something else is listed, not guessed at."""
        items: list[Item] = state["items"]
        unread = []
        for sentence in (s.strip() for s in re.split(r"\.(?=\s|$)", observation)):
            if not sentence:
                continue
            norm = _normalize(sentence)
            named = _OBSERVED_ITEM.search(norm)
            targets = [int(named.group(1))] if named else list(range(1, len(items) + 1))
            if any(not 1 <= n <= len(items) for n in targets) or not targets:
                state["problems"].append(
                    f"la observación nombra un ítem que el caso no trae: «{sentence}»"
                )
                continue
            unit = _OBSERVED_UNIT.search(_repair(sentence))
            if unit:
                change: dict[str, Any] = {"unit": unit.group("unit")}
            elif named and re.search(r"\bEXENT(?:O|A)\b", norm):
                change = {"exempt": True}
            elif named and re.search(r"\bAFECT(?:O|A)\b", norm):
                change = {"exempt": False}
            else:
                unread.append(sentence)
                continue
            for n in targets:
                items[n - 1] = replace(items[n - 1], **change)
        if unread:
            self.fail(
                line, f"observación del caso {caso} que no se sabe aplicar: «{'. '.join(unread)}»"
            )

    def _item(self, cells: list[str], columns: list[str], *, whole_prices: bool) -> Item | None:
        """One item by the header's columns. With `whole_prices` (the boleta set: pesos with
        IVA) a price written with thousands separators ("19.900") is read as whole pesos."""
        if len(cells) < 2:
            return None
        name, values = cells[0], cells[1:]
        fields: dict[str, Any] = {}
        numeric_columns = [c for c in columns if not _has(c, "UNIDAD") and not _has(c, "DESCUENTO")]
        numbers = iter(numeric_columns)
        for value in values:
            pct = _percent(value)
            if pct is not None and any(_has(c, "DESCUENTO") for c in columns):
                fields["discount_pct"] = pct
            elif _NUMBER.match(value) or (whole_prices and _THOUSANDS.match(value)):
                column = next(numbers, None)
                if column is None:
                    return None
                field_name = _item_field(column)
                if whole_prices and field_name == "price" and _THOUSANDS.match(value):
                    value = value.replace(".", "")
                elif not _NUMBER.match(value):
                    return None
                fields[field_name] = _decimal(value)
            elif re.match(r"^[A-Za-z]{1,4}$", value) and any(_has(c, "UNIDAD") for c in columns):
                fields["unit"] = value.upper()
            else:
                return None
        norm = _normalize(name)
        return Item(name=name, exempt=bool(re.search(r"\bEXENT(?:O|A)\b", norm)), **fields)


def _header(norm: str) -> tuple[str, str] | None:
    """A set's header line: its title ("SET BASICO") and número de atención ("" when none)."""
    boleta = _BOLETA_SET_HEADER.match(norm)
    if boleta:
        title = re.sub(r"\s+", " ", boleta.group("title")).strip(" -–:")
        return f"SET DE PRUEBA DE {title}", boleta.group("n") or ""
    match = _SET_HEADER.search(norm)
    if match:
        return "SET " + re.sub(r"\s+", " ", match.group("title")).strip(" -–"), match.group("n")
    return None


def _case_id(norm: str, kind: SetKind) -> str | None:
    """A case's heading: "CASO 5120001-1" gives "5120001-1"; in the boleta set "CASO-1" gives
    "1" (that set has no número de atención)."""
    match = _CASE.search(norm.strip())
    if match is None and kind is SetKind.BOLETA:
        match = _NUMBERED_CASE.search(norm.strip())
    return re.sub(r"\s+", "", match.group("caso")) if match else None


def _item_field(column: str) -> str:
    if _has(column, "CANTIDAD"):
        return "quantity"
    if _has(column, "VALOR"):
        return "line_value"
    return "price"


def parse(data: bytes | str) -> SetFile:
    """Read a set de pruebas; raise SetFileError when no set at all could be found in it."""
    result = _Reader(decode(data)).read()
    if not result.sets:
        raise SetFileError(
            "No es un set de pruebas del SII: no se encontró ningún «SET … NUMERO DE ATENCION»."
        )
    return result
