"""Read the SII's RCV ("Registro de Compras y Ventas") CSV downloads.

The RCV is the register the SII keeps of a company's purchases (compras, in four states:
registro, pendiente, no incluir, reclamado) and sales (ventas), built from the documents it
received; the F29 is declared from it. `parse_rcv` takes the CSV as downloaded (UTF-8 with or
without BOM, or Latin-1/Windows-1252) and guarantees: a file it cannot use raises `RcvFileError`
with one Spanish line; every document in the file ends up either in `rows` (validated by cl-sii,
RUTs canonical with a correct check digit, amounts as int) or in `rejected`, with its line and a
Spanish reason. Pure: no Django.

`RcvStream` reads the same files from a binary file object without holding them in memory: one
cheap pass over the bytes decides the encoding and refuses what is not text, the header is
checked at once, and `chunks()` hands the documents over a few thousand lines at a time, each
chunk ending at a document boundary (an "otros impuestos" continuation row stays with the rows
of its document next to it). `parse_rcv` is the whole file as one chunk.
"""

import codecs
import csv
import io
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from cl_sii.contribuyente.constants import RAZON_SOCIAL_LONG_MAX_LENGTH
from cl_sii.dte.constants import DTE_FOLIO_FIELD_MAX_VALUE, DTE_FOLIO_FIELD_MIN_VALUE
from cl_sii.rcv import parse_csv as cl_sii_csv
from cl_sii.rut import Rut

from erp.rut import normalize_rut

KINDS = ("compras", "ventas")
ESTADOS_COMPRAS = ("registro", "pendiente", "no_incluir", "reclamado")

SANTIAGO = ZoneInfo("America/Santiago")

_ESTADO_LABELS = {
    "registro": "Registro",
    "pendiente": "Pendientes",
    "no_incluir": "No incluir",
    "reclamado": "Reclamados",
}
_ESTADO_ALIASES = {"pendientes": "pendiente", "reclamados": "reclamado"}

# The header of each download, exactly as cl-sii checks it (same names, same order); cl-sii
# keeps these lists inside its functions. The four compras headers are all different:
# "Fecha Reclamo" only in reclamado, no "Fecha Acuse" in pendiente, and the three "Tabacos"
# columns only in registro (no incluir is registro without them).
_COMPRAS_HEAD = (
    "Nro",
    "Tipo Doc",
    "Tipo Compra",
    "RUT Proveedor",
    "Razon Social",
    "Folio",
    "Fecha Docto",
    "Fecha Recepcion",
)
_COMPRAS_AMOUNTS = (
    "Monto Exento",
    "Monto Neto",
    "Monto IVA Recuperable",
    "Monto Iva No Recuperable",
    "Codigo IVA No Rec.",
    "Monto Total",
    "Monto Neto Activo Fijo",
    "IVA Activo Fijo",
    "IVA uso Comun",
    "Impto. Sin Derecho a Credito",
    "IVA No Retenido",
)
_TABACOS = ("Tabacos Puros", "Tabacos Cigarrillos", "Tabacos Elaborados")
_COMPRAS_TAIL = (
    "NCE o NDE sobre Fact. de Compra",
    "Codigo Otro Impuesto",
    "Valor Otro Impuesto",
    "Tasa Otro Impuesto",
)
_VENTAS_HEADER = (
    "Nro",
    "Tipo Doc",
    "Tipo Venta",
    "Rut cliente",
    "Razon Social",
    "Folio",
    "Fecha Docto",
    "Fecha Recepcion",
    "Fecha Acuse Recibo",
    "Fecha Reclamo",
    "Monto Exento",
    "Monto Neto",
    "Monto IVA",
    "Monto total",
    "IVA Retenido Total",
    "IVA Retenido Parcial",
    "IVA no retenido",
    "IVA propio",
    "IVA Terceros",
    "RUT Emisor Liquid. Factura",
    "Neto Comision Liquid. Factura",
    "Exento Comision Liquid. Factura",
    "IVA Comision Liquid. Factura",
    "IVA fuera de plazo",
    "Tipo Docto. Referencia",
    "Folio Docto. Referencia",
    "Num. Ident. Receptor Extranjero",
    "Nacionalidad Receptor Extranjero",
    "Credito empresa constructora",
    "Impto. Zona Franca (Ley 18211)",
    "Garantia Dep. Envases",
    "Indicador Venta sin Costo",
    "Indicador Servicio Periodico",
    "Monto No facturable",
    "Total Monto Periodo",
    "Venta Pasajes Transporte Nacional",
    "Venta Pasajes Transporte Internacional",
    "Numero Interno",
    "Codigo Sucursal",
    "NCE o NDE sobre Fact. de Compra",
    "Codigo Otro Imp.",
    "Valor Otro Imp.",
    "Tasa Otro Imp.",
)
_HEADERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("compras", "registro"): (
        *_COMPRAS_HEAD,
        "Fecha Acuse",
        *_COMPRAS_AMOUNTS,
        *_TABACOS,
        *_COMPRAS_TAIL,
    ),
    ("compras", "pendiente"): (*_COMPRAS_HEAD, *_COMPRAS_AMOUNTS, *_COMPRAS_TAIL),
    ("compras", "no_incluir"): (*_COMPRAS_HEAD, "Fecha Acuse", *_COMPRAS_AMOUNTS, *_COMPRAS_TAIL),
    ("compras", "reclamado"): (*_COMPRAS_HEAD, "Fecha Reclamo", *_COMPRAS_AMOUNTS, *_COMPRAS_TAIL),
    ("ventas", "registro"): _VENTAS_HEADER,
}
_CL_SII_PARSERS: dict[
    tuple[str, str], Callable[..., Iterable[tuple[Any, int, dict[str, Any], dict[str, Any]]]]
] = {
    ("compras", "registro"): cl_sii_csv.parse_rcv_compra_registro_csv_file,
    ("compras", "pendiente"): cl_sii_csv.parse_rcv_compra_pendiente_csv_file,
    ("compras", "no_incluir"): cl_sii_csv.parse_rcv_compra_no_incluir_csv_file,
    ("compras", "reclamado"): cl_sii_csv.parse_rcv_compra_reclamado_csv_file,
    ("ventas", "registro"): cl_sii_csv.parse_rcv_venta_csv_file,
}


@dataclass(frozen=True)
class _Layout:
    """The columns that play the same role under different names in compras and ventas."""

    label: str
    rut: str
    tipo_operacion: str
    valor_otro: str
    tasa_otro: str
    markers: frozenset[str]  # columns only this kind has


_LAYOUTS = {
    "compras": _Layout(
        label="Registro de Compras",
        rut="RUT Proveedor",
        tipo_operacion="Tipo Compra",
        valor_otro="Valor Otro Impuesto",
        tasa_otro="Tasa Otro Impuesto",
        markers=frozenset({"RUT Proveedor", "Tipo Compra", "Monto IVA Recuperable"}),
    ),
    "ventas": _Layout(
        label="Registro de Ventas",
        rut="Rut cliente",
        tipo_operacion="Tipo Venta",
        valor_otro="Valor Otro Imp.",
        tasa_otro="Tasa Otro Imp.",
        markers=frozenset({"Rut cliente", "Tipo Venta", "Monto IVA"}),
    ),
}

# cl-sii's own test for an "otros impuestos" continuation row (it looks up "Monto Total", which
# ventas spells "Monto total", so for ventas only the first two columns count).
_CONTINUATION_EMPTY = ("Nro", "Fecha Recepcion", "Monto Total")

_DATE_COLUMNS = frozenset({"Fecha Docto"})
_DATETIME_COLUMNS = frozenset(
    {"Fecha Recepcion", "Fecha Acuse", "Fecha Acuse Recibo", "Fecha Reclamo"}
)
_RUT_COLUMNS = frozenset({"RUT Proveedor", "Rut cliente", "RUT Emisor Liquid. Factura"})
_NUMBER_COLUMNS = frozenset({"Folio", "Indicador Venta sin Costo", "Indicador Servicio Periodico"})
_TEXT_COLUMNS = frozenset({"Razon Social", "Codigo IVA No Rec.", "Numero Interno"})
_INTEGER = re.compile(r"^-?\d+$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Dialect(csv.Dialect):
    """The RCV's CSV dialect, the same as cl-sii's."""

    delimiter = ";"
    quotechar = '"'
    escapechar = None
    doublequote = False
    skipinitialspace = False
    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL


class RcvFileError(ValueError):
    """The whole file is unusable; `message` is one Spanish line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RcvRow:
    line: int  # line in the file; the header is line 1
    kind: str  # "compras" | "ventas"
    estado: str  # compras: registro | pendiente | no_incluir | reclamado; ventas: registro
    tipo: int  # SII document type (33, 34, 46, 56, 61, 914, 39, ...)
    folio: int
    rut: str  # the counterpart (proveedor or cliente), canonical "96790240-3"
    razon_social: str  # whitespace runs collapsed to one space
    fecha: date  # Fecha Docto
    fecha_recepcion: datetime | None  # aware, America/Santiago
    fecha_reclamo: datetime | None
    tipo_compra: str  # compras: the "Tipo Compra" text ("Del Giro"); "" for ventas
    monto_exento: int
    monto_neto: int
    monto_iva: int  # compras: Monto IVA Recuperable; ventas: Monto IVA
    monto_iva_no_recuperable: int
    codigo_iva_no_rec: str
    monto_neto_activo_fijo: int
    iva_activo_fijo: int
    iva_uso_comun: int
    otros_impuestos: int  # sum of the document's "Valor Otro Impuesto"
    monto_total: int

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.tipo, self.folio, self.rut)


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str  # Spanish, names the column(s)
    tipo: int | None = None
    folio: int | None = None


@dataclass(frozen=True)
class RcvFile:
    kind: str
    estado: str
    rows: tuple[RcvRow, ...]
    rejected: tuple[RejectedRow, ...]


@dataclass
class _Document:
    """The lines of one document: its main row and its "otros impuestos" continuation rows."""

    key: tuple[str, str, str]
    main: int | None = None
    lines: list[int] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # found before cl-sii, by column
    blocking: bool = False  # a problem cl-sii would turn into an exception, not a message


def parse_rcv(
    content: bytes, *, kind: str, contribuyente_rut: str, estado: str | None = None
) -> RcvFile:
    """Parse one RCV download; raise ValueError for a bad argument, RcvFileError for a bad file.

    `kind` is "compras" or "ventas". For compras, `estado` is registro, pendiente, no_incluir
    ("no-incluir", "no incluir" also do) or reclamado; None reads it from the header, as cl-sii's
    four header lists all differ: only reclamado has "Fecha Reclamo", pendiente has no "Fecha
    Acuse", registro is no incluir plus the three "Tabacos" columns. A header that is none of
    them exactly is reported against the closest one. Header names are matched ignoring case,
    accents, surrounding blanks and a trailing ';'.

    cl-sii validates every field. On top of it this function checks the counterpart's RUT check
    digit (cl-sii only checks the shape), keeps apart documents of different suppliers with the
    same type and folio (cl-sii groups compras rows ignoring the RUT, which would merge them),
    and reports duplicates, orphan "otros impuestos" rows and malformed lines itself.
    """
    stream = RcvStream(
        io.BytesIO(_as_bytes(content)),
        kind=kind,
        contribuyente_rut=contribuyente_rut,
        estado=estado,
    )
    (chunk,) = stream.chunks(size=None)
    return RcvFile(kind=kind, estado=stream.estado, rows=chunk.rows, rejected=chunk.rejected)


@dataclass(frozen=True)
class RcvChunk:
    """Some consecutive lines of the file: their documents and their rejected lines."""

    rows: tuple[RcvRow, ...]
    rejected: tuple[RejectedRow, ...]
    last_line: int  # the last line of the file this chunk covers
    bytes_read: int  # how far into the file (approximately: the decoder reads ahead)


class RcvStream:
    """One RCV download read from a binary file object (seekable), chunk by chunk.

    The constructor reads the file once in blocks (encoding, binary junk, emptiness) and then its
    header: a file it cannot use raises RcvFileError there, before any row is read; `estado` is
    then known. `chunks(size)` yields RcvChunk objects of about `size` lines (None: one chunk).
    A document repeated in a later chunk is reported as in parse_rcv; an "otros impuestos" row
    far from its document (another chunk) is reported as an orphan.
    """

    BLOCK = 1024 * 1024

    def __init__(
        self,
        source: BinaryIO,
        *,
        kind: str,
        contribuyente_rut: str,
        estado: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"Tipo de registro desconocido «{kind}»: use «compras» o «ventas».")
        wanted = _clean_estado(kind, estado)
        self.kind = kind
        self.contribuyente = Rut(normalize_rut(contribuyente_rut))
        self.source = source
        self.start = source.tell()
        self.encoding = _sniff(source, self.BLOCK)
        self.size = source.seek(0, io.SEEK_END) - self.start
        self.layout = _LAYOUTS[kind]
        self._text = self._open()
        self._numbered = enumerate(self._lines(), start=1)
        for number, text in self._numbered:
            if text.strip():
                self.header_line = number
                break
        else:  # _sniff saw something other than blanks: only a BOM, say
            raise RcvFileError("El archivo está vacío.")
        header = _read_header(text)
        self.estado = _match_header(kind, wanted, header)
        self.names = _HEADERS[(kind, self.estado)]

    def _open(self) -> io.TextIOWrapper:
        self.source.seek(self.start)
        # newline=None: "\r\n", "\r" and "\n" all end a line, as parse_rcv always did.
        return io.TextIOWrapper(_Unclosed(self.source), encoding=self.encoding, newline=None)

    def _lines(self) -> Iterator[str]:
        first = True
        for line in self._text:
            if first:
                line = line.lstrip("\ufeff")
                first = False
            yield line[:-1] if line.endswith("\n") else line

    def bytes_read(self) -> int:
        try:
            return min(self.size, max(0, self.source.tell() - self.start))
        except (OSError, ValueError):
            return 0

    def chunks(self, size: int | None = 2000) -> Iterator[RcvChunk]:
        seen: dict[int, int] = {}  # hash of a document's key -> the line of its main row
        lines: dict[int, str] = {}
        raws: dict[int, dict[str, str]] = {}
        rejected: list[RejectedRow] = []
        documents: dict[tuple[str, str, str], _Document] = {}
        last_key: tuple[str, str, str] | None = None
        count = 0
        number = self.header_line
        for number, text in self._numbered:
            fields = _split(text)
            if fields is None:
                reason = "La línea no se puede leer como CSV (¿comillas sin cerrar?)."
                rejected.append(RejectedRow(number, reason))
                count += 1
                continue
            if not any(value.strip() for value in fields):
                continue  # a blank line, or one made only of separators
            raw = dict(zip(self.names, fields, strict=False))
            problem = _check_width(fields, self.names)
            if problem:
                rejected.append(_rejected(number, problem, raw))
                count += 1
                continue
            key = (raw["Tipo Doc"], raw["Folio"], raw[self.layout.rut])
            if size is not None and count >= size and key != last_key:
                yield self._chunk(documents, lines, raws, rejected, seen, number - 1)
                lines, raws, rejected, documents, count = {}, {}, [], {}, 0
            lines[number] = text
            raws[number] = raw
            last_key = key
            count += 1
            _add_to_document(documents, number, raw, self.layout, rejected, seen)
        yield self._chunk(documents, lines, raws, rejected, seen, number)

    def _chunk(
        self,
        documents: dict[tuple[str, str, str], _Document],
        lines: dict[int, str],
        raws: dict[int, dict[str, str]],
        rejected: list[RejectedRow],
        seen: dict[int, int],
        last_line: int,
    ) -> RcvChunk:
        for document in documents.values():
            if document.main is None:
                for number in document.lines:
                    reason = "Fila de «otros impuestos» sin la fila del documento al que pertenece."
                    rejected.append(_rejected(number, reason, raws[number]))
            else:
                seen[hash(document.key)] = document.main
                _precheck(document, raws, self.layout)
        rows = _run_cl_sii(
            self.kind,
            self.estado,
            self.contribuyente,
            documents,
            lines,
            raws,
            self.names,
            rejected,
        )
        return RcvChunk(
            rows=tuple(sorted(rows, key=lambda row: row.line)),
            rejected=tuple(sorted(rejected, key=lambda row: row.line)),
            last_line=last_line,
            bytes_read=self.bytes_read(),
        )


class _Unclosed(io.RawIOBase):
    """A view of a binary file object that TextIOWrapper may close without closing it."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass


def _as_bytes(content: bytes) -> bytes:
    if not isinstance(content, bytes | bytearray | memoryview):
        raise TypeError("content must be bytes")
    return bytes(content)


# Unicode's Cc category: C0 controls, DEL and the C1 controls.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _sniff(source: BinaryIO, block: int) -> str:
    """The encoding of the file (read in blocks, then rewound), or RcvFileError when it is empty,
    a spreadsheet, a PDF or not text. The SII's downloads are UTF-8 (with or without BOM) or
    Latin-1; Windows-1252 is the same for every printable character and adds a few more (€, “ ”),
    Latin-1 decodes anything."""
    start = source.tell()
    head = source.read(4)
    if head.startswith(b"PK\x03\x04"):
        raise RcvFileError(
            "El archivo es una planilla Excel (o un .zip), no un CSV: descargue el registro "
            "desde el SII en formato CSV y súbalo sin abrirlo en Excel."
        )
    if head.startswith(b"%PDF"):
        raise RcvFileError("El archivo es un PDF, no un CSV: descargue el registro en formato CSV.")
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    candidates = ("utf-16",) if utf16 else ("utf-8-sig", "cp1252", "latin-1")
    for encoding in candidates:
        source.seek(start)
        decoder = codecs.getincrementaldecoder(encoding)()
        chars = controls = 0
        blank = True
        try:
            while data := source.read(block):
                if not utf16 and b"\x00" in data:
                    raise _not_text()
                text = decoder.decode(data)
                chars += len(text)
                controls += len(_CONTROLS.findall(text)) - text.count("\t")
                blank = blank and not text.strip(" \t\r\n\x0b\x0c\ufeff")
            text = decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            if utf16:
                raise _not_text() from None
            continue
        chars += len(text)
        controls += len(_CONTROLS.findall(text)) - text.count("\t")
        blank = blank and not text.strip(" \t\r\n\x0b\x0c\ufeff")
        if blank:
            raise RcvFileError("El archivo está vacío.")
        if controls * 100 > chars:
            raise _not_text()
        source.seek(start)
        return encoding
    raise _not_text()  # unreachable: Latin-1 decodes anything


def _clean_estado(kind: str, estado: str | None) -> str | None:
    if estado is None:
        return None
    if not isinstance(estado, str):
        raise ValueError("El estado debe ser texto, por ejemplo «registro».")
    clean = re.sub(r"[\s-]+", "_", estado.strip().lower())
    clean = _ESTADO_ALIASES.get(clean, clean)
    if kind == "ventas":
        if clean != "registro":
            raise ValueError("El Registro de Ventas no tiene estados; omita el estado.")
        return clean
    if clean not in ESTADOS_COMPRAS:
        raise ValueError(
            f"Estado desconocido «{estado}»: use registro, pendiente, no_incluir o reclamado."
        )
    return clean


def _not_text() -> RcvFileError:
    return RcvFileError("El archivo no es un archivo de texto CSV (parece binario).")


def _split(text: str) -> list[str] | None:
    """The line's fields, or None if it is not one CSV record on its own (e.g. a quote left
    open, which would make cl-sii's reader swallow the next lines)."""
    try:
        records = list(csv.reader([text + "\n", "end\n"], dialect=_Dialect))
    except csv.Error:
        return None
    if len(records) != 2 or records[1] != ["end"]:
        return None
    return records[0]


def _read_header(text: str) -> list[str]:
    fields = _split(text)
    if fields is None:
        raise RcvFileError("La primera línea del archivo no se puede leer como encabezado CSV.")
    names = [name.strip() for name in fields]
    while names and not names[-1]:
        names.pop()  # a trailing ';'
    if len(names) <= 1:
        if text.count(",") >= 5:
            hint = "viene separado por comas"
        elif text.count("\t") >= 5:
            hint = "viene separado por tabulaciones"
        else:
            hint = "no tiene columnas separadas por punto y coma (;)"
        raise RcvFileError(
            f"El archivo {hint}; el RCV del SII se descarga separado por punto y coma (;). "
            "Descárguelo de nuevo y súbalo sin abrirlo en Excel."
        )
    return names


def _fold(name: str) -> str:
    """Compare column names ignoring case, accents and runs of whitespace."""
    plain = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return " ".join(plain.split()).casefold()


# Per kind: compras' "Monto Total" and ventas' "Monto total" fold to the same text.
_CANONICAL_NAMES = {
    kind: {_fold(name): name for (k, _), names in _HEADERS.items() if k == kind for name in names}
    for kind in KINDS
}


def _label(kind: str, estado: str) -> str:
    if kind == "ventas":
        return "Registro de Ventas"
    return f"Registro de Compras ({_ESTADO_LABELS[estado]})"


def _match_header(kind: str, wanted: str | None, header: list[str]) -> str:
    """Return the estado whose header this is, or raise RcvFileError saying what is wrong."""
    other = "ventas" if kind == "compras" else "compras"
    folded = {_fold(name) for name in header}
    if folded & _folded(_LAYOUTS[other].markers) and not folded & _folded(_LAYOUTS[kind].markers):
        raise RcvFileError(
            f"Este archivo es un {_LAYOUTS[other].label} del SII y se está importando como "
            f"{_LAYOUTS[kind].label}; súbalo como {other}."
        )
    header = [_CANONICAL_NAMES[kind].get(_fold(name), name) for name in header]
    present = set(header)
    candidates = ESTADOS_COMPRAS if kind == "compras" else ("registro",)
    known = {name for estado in candidates for name in _HEADERS[(kind, estado)]}
    if len(present & known) < 5:
        raise RcvFileError(
            f"La primera línea no es el encabezado de un {_LAYOUTS[kind].label} del SII "
            f"(debe empezar por «{';'.join(_HEADERS[(kind, candidates[0])][:4])}…»)."
        )
    exact = [estado for estado in candidates if tuple(header) == _HEADERS[(kind, estado)]]
    if wanted is not None:
        if exact and exact[0] != wanted:
            raise RcvFileError(
                f"Este archivo es del {_label(kind, exact[0])}, no del {_label(kind, wanted)}."
            )
        closest = wanted
    elif exact:
        return exact[0]
    else:
        closest = min(candidates, key=lambda estado: _distance(header, _HEADERS[(kind, estado)]))
    expected = _HEADERS[(kind, closest)]
    if tuple(header) == expected:
        return closest
    raise RcvFileError(
        f"El encabezado no corresponde al {_label(kind, closest)} del SII: "
        f"{_describe_difference(header, expected)}."
    )


def _folded(names: Iterable[str]) -> set[str]:
    return {_fold(name) for name in names}


def _distance(header: Sequence[str], expected: Sequence[str]) -> int:
    return len(set(header) ^ set(expected))


def _describe_difference(header: Sequence[str], expected: Sequence[str]) -> str:
    def quote(names: Iterable[str]) -> str:
        return ", ".join(f"«{name or '(sin nombre)'}»" for name in names)

    missing = [name for name in expected if name not in header]
    unknown = [name for name in header if name not in expected]
    repeated = sorted({name for name in header if header.count(name) > 1}, key=header.index)
    parts = []
    if missing:
        parts.append(f"faltan las columnas {quote(missing)}")
    if unknown:
        parts.append(f"columnas desconocidas {quote(unknown)}")
    if repeated:
        parts.append(f"columnas repetidas {quote(repeated)}")
    if parts:
        return "; ".join(parts)
    position = next(i for i, (a, b) in enumerate(zip(header, expected, strict=True)) if a != b)
    return (
        f"las columnas no están en el orden del SII (la columna {position + 1} debe ser "
        f"«{expected[position]}» y es «{header[position]}»)"
    )


def _check_width(fields: list[str], names: tuple[str, ...]) -> str | None:
    extra = fields[len(names) :]
    if len(fields) < len(names) or any(value.strip() for value in extra):
        return (
            f"La fila tiene {len(fields)} columnas y el encabezado {len(names)}; "
            "puede que un valor contenga un punto y coma."
        )
    return None


def _add_to_document(
    documents: dict[tuple[str, str, str], _Document],
    number: int,
    raw: dict[str, str],
    layout: _Layout,
    rejected: list[RejectedRow],
    seen: dict[int, int],
) -> None:
    # The key is cl-sii's (raw folio, tipo and RUT), so both group the same lines together.
    key = (raw["Tipo Doc"], raw["Folio"], raw[layout.rut])
    document = documents.setdefault(key, _Document(key))
    is_main = any(raw.get(name, "") != "" for name in _CONTINUATION_EMPTY)
    earlier = document.main if document.main is not None else seen.get(hash(key))
    if is_main and earlier is not None:
        reason = (
            f"Documento repetido (tipo {key[0].strip()}, folio {key[1].strip()}, "
            f"{layout.rut} {key[2].strip()}): ya aparece en la línea {earlier}."
        )
        rejected.append(_rejected(number, reason, raw))
        return
    if is_main:
        document.main = number
    document.lines.append(number)


def _precheck(document: _Document, raws: dict[int, dict[str, str]], layout: _Layout) -> None:
    """What cl-sii does not check (the RUT's check digit), or would only report as an exception
    with an English message (folio range, long names, "otros impuestos" values)."""
    assert document.main is not None
    raw = raws[document.main]
    rut = raw[layout.rut].strip()
    if rut:
        try:
            valid_dv = Rut(rut).validate_dv()
        except ValueError:
            document.reasons[layout.rut] = f"{layout.rut}: RUT inválido «{rut}»"
        else:
            if not valid_dv:
                document.reasons[layout.rut] = (
                    f"{layout.rut}: dígito verificador incorrecto «{rut}»"
                )
    folio = raw["Folio"].strip()
    if _INTEGER.match(folio) and not (
        DTE_FOLIO_FIELD_MIN_VALUE <= int(folio) <= DTE_FOLIO_FIELD_MAX_VALUE
    ):
        document.reasons["Folio"] = f"Folio: fuera de rango «{folio}»"
        document.blocking = True
    name = raw["Razon Social"].strip()
    if len(name) > RAZON_SOCIAL_LONG_MAX_LENGTH:
        document.reasons["Razon Social"] = (
            f"Razon Social: tiene {len(name)} caracteres (máximo {RAZON_SOCIAL_LONG_MAX_LENGTH})"
        )
        document.blocking = True
    for number in document.lines:
        valor = raws[number].get(layout.valor_otro, "").strip()
        tasa = raws[number].get(layout.tasa_otro, "").strip()
        if valor not in ("", "-") and not _INTEGER.match(valor):
            document.reasons.setdefault(
                layout.valor_otro, f"{layout.valor_otro}: monto inválido «{valor}»"
            )
            document.blocking = True
        if tasa not in ("", "-") and not _is_decimal(tasa):
            document.reasons.setdefault(
                layout.tasa_otro, f"{layout.tasa_otro}: tasa inválida «{tasa}»"
            )
            document.blocking = True


def _is_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def _run_cl_sii(
    kind: str,
    estado: str,
    contribuyente: Rut,
    documents: dict[tuple[str, str, str], _Document],
    lines: dict[int, str],
    raws: dict[int, dict[str, str]],
    names: tuple[str, ...],
    rejected: list[RejectedRow],
) -> list[RcvRow]:
    """Hand the good documents to cl-sii through temporary UTF-8 files, the input it takes."""
    # cl-sii groups compras rows by folio and tipo only (it looks the RUT up as "Rut Proveedor",
    # a column that does not exist), so two suppliers' documents with the same tipo and folio
    # would become one. Each file therefore holds at most one document per (tipo, folio).
    batches: list[list[_Document]] = []
    taken: dict[tuple[str, str], int] = {}
    for document in documents.values():
        if document.main is None:
            continue
        if document.blocking:
            rejected.append(_rejected_document(document, raws, names))
            continue
        slot = taken.get(document.key[:2], 0)
        taken[document.key[:2]] = slot + 1
        if slot == len(batches):
            batches.append([])
        batches[slot].append(document)

    parse = _CL_SII_PARSERS[(kind, estado)]
    rows: list[RcvRow] = []
    with tempfile.TemporaryDirectory(prefix="rcv-") as folder:
        for slot, batch in enumerate(batches):
            by_line = {number: document for document in batch for number in document.lines}
            numbers = sorted(by_line)
            path = Path(folder) / f"rcv-{slot}.csv"
            text = "\n".join([";".join(names), *(lines[number] for number in numbers)])
            path.write_text(text + "\n", encoding="utf-8", newline="")
            try:
                results = list(parse(contribuyente, str(path)))
            except (csv.Error, ValueError) as exc:
                # cl-sii re-reads what was already checked here; only a surprise lands here.
                raise RcvFileError(f"No se pudo leer el archivo como CSV del SII ({exc}).") from exc
            for entry, row_index, _data, errors in results:
                document = by_line[numbers[row_index - 1]]
                assert document.main is not None
                reasons = dict(document.reasons)
                reasons.update(_translate(errors, raws[document.main], reasons))
                if reasons or entry is None:
                    rejected.append(_rejected_document(document, raws, names, reasons))
                else:
                    rows.append(_to_row(entry, kind, estado, document, raws))
    return rows


def _translate(
    errors: dict[str, Any], raw: dict[str, str], known: dict[str, str]
) -> dict[str, str]:
    """cl-sii's (English, marshmallow) row errors as one Spanish reason per column."""
    reasons: dict[str, str] = {}
    for column, messages in errors.get("validation", {}).items():
        if column in known:
            continue
        if column == "Documento Referencias":
            tipo = raw.get("Tipo Docto. Referencia", "").strip()
            folio = raw.get("Folio Docto. Referencia", "").strip()
            reasons[column] = (
                "Tipo Docto. Referencia / Folio Docto. Referencia: referencia incompleta o "
                f"inválida «{tipo}» / «{folio}»"
            )
        elif column == "Otros Impuestos":
            reasons[column] = "Codigo/Valor/Tasa Otro Impuesto: valores inválidos"
        else:
            reasons[column] = _column_reason(column, raw.get(column, ""), messages)
    if errors.get("conversion_errors") and not reasons and not known:
        detail = errors["conversion_errors"]
        reasons["_"] = f"el documento no cumple las validaciones del SII ({detail})"
    return reasons


def _column_reason(column: str, value: str | None, messages: object) -> str:
    value = (value or "").strip()
    if not value or "Missing data for required field." in str(messages):
        return f"{column}: falta el valor"
    if column in _DATE_COLUMNS:
        problem = "fecha inválida"
    elif column in _DATETIME_COLUMNS:
        problem = "fecha y hora inválida"
    elif column in _RUT_COLUMNS:
        problem = "RUT inválido"
    elif column == "Tipo Doc":
        problem = "tipo de documento desconocido"
    elif column == "Tipo Compra":
        problem = "tipo de compra desconocido"
    elif column == "Tipo Venta":
        problem = "tipo de venta desconocido"
    elif column in _NUMBER_COLUMNS:
        problem = "número inválido"
    elif column in _TEXT_COLUMNS:
        problem = "valor inválido"
    else:
        problem = "monto inválido"
    return f"{column}: {problem} «{value}»"


def _rejected(number: int, reason: str, raw: dict[str, str]) -> RejectedRow:
    return RejectedRow(
        line=number,
        reason=reason,
        tipo=_int_or_none(raw.get("Tipo Doc")),
        folio=_int_or_none(raw.get("Folio")),
    )


def _rejected_document(
    document: _Document,
    raws: dict[int, dict[str, str]],
    names: tuple[str, ...],
    reasons: dict[str, str] | None = None,
) -> RejectedRow:
    assert document.main is not None
    reasons = document.reasons if reasons is None else reasons
    order = {name: position for position, name in enumerate(names)}
    columns = sorted(reasons, key=lambda column: order.get(column, len(order)))
    text = "; ".join(reasons[column] for column in columns) or "fila inválida"
    return _rejected(document.main, text, raws[document.main])


def _int_or_none(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if _INTEGER.match(value) else None


def _to_row(
    entry: Any, kind: str, estado: str, document: _Document, raws: dict[int, dict[str, str]]
) -> RcvRow:
    assert document.main is not None
    raw = raws[document.main]
    compras = kind == "compras"
    rut: Rut = entry.proveedor_rut if compras else entry.cliente_rut
    name: str = entry.proveedor_razon_social if compras else entry.cliente_razon_social
    reclamo = getattr(entry, "fecha_reclamo_dt", None)
    return RcvRow(
        line=document.main,
        kind=kind,
        estado=estado,
        tipo=int(entry.tipo_docto),
        folio=entry.folio,
        rut=rut.canonical,
        razon_social=" ".join(name.split()),
        fecha=entry.fecha_emision_date,
        fecha_recepcion=_local(entry.fecha_recepcion_dt),
        fecha_reclamo=_local(reclamo),
        tipo_compra=" ".join(raw["Tipo Compra"].split()) if compras else "",
        monto_exento=entry.monto_exento or 0,
        monto_neto=entry.monto_neto or 0,
        monto_iva=(entry.monto_iva_recuperable if compras else entry.monto_iva) or 0,
        monto_iva_no_recuperable=getattr(entry, "monto_iva_no_recuperable", None) or 0,
        codigo_iva_no_rec=(getattr(entry, "codigo_iva_no_rec", None) or "").strip(),
        monto_neto_activo_fijo=getattr(entry, "monto_neto_activo_fijo", None) or 0,
        iva_activo_fijo=getattr(entry, "iva_activo_fijo", None) or 0,
        iva_uso_comun=getattr(entry, "iva_uso_comun", None) or 0,
        otros_impuestos=sum(
            item.get("valor_otro_impuesto") or 0 for item in entry.otros_impuestos or ()
        ),
        monto_total=entry.monto_total,
    )


def _local(value: datetime | None) -> datetime | None:
    """cl-sii's aware datetimes use pytz; give the rest of the code zoneinfo ones."""
    return value.astimezone(SANTIAGO) if value is not None else None
