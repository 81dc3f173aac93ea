"""The exchange mailbox ("correo de intercambio"): suppliers' DTE files read over IMAP.

Plain Python (imaplib and email): no Django, no models. The caller polls with `fetch_unseen`,
which reads every unseen message without marking it read (BODY.PEEK), keeps its XML and ZIP
attachments, and leaves the rest; once the caller has committed what it took in, `mark_seen`
marks exactly those messages read. A message whose intake failed stays unseen and is read
again on the next poll.

Memory stays bounded: the sizes are asked first (RFC822.SIZE), messages are fetched one at a
time, and a message larger than `max_message_bytes` is not downloaded: it comes back with its
headers only and `oversized=True`, so the caller can report it.

Every failure is a `MailboxError` with a one-line Spanish message for the user; the password
is never part of a message, a log line or a repr.
"""

from __future__ import annotations

import base64
import email
import email.errors
import email.header
import email.policy
import email.utils
import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from typing import Literal

logger = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]
SECURITIES: tuple[Security, ...] = ("ssl", "starttls", "none")

DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024
# UIDs per FETCH/STORE command: keeps command lines short on a mailbox with a long backlog.
_UID_CHUNK = 200
# .eml files attached inside .eml files: how deep we follow them.
_MAX_NESTING = 3

XML_CONTENT_TYPES = frozenset({"text/xml", "application/xml"})
ZIP_CONTENT_TYPES = frozenset(
    {"application/zip", "application/x-zip", "application/x-zip-compressed"}
)
KEPT_EXTENSIONS = (".xml", ".zip")


@dataclass(frozen=True)
class MailboxConfig:
    """Where the exchange mailbox is and how to log in. `cafile` trusts a private CA (a test
    server's self-signed certificate); the system's CAs are trusted otherwise."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    security: Security = "ssl"
    timeout: float = 30.0
    cafile: str | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ValueError(f"security must be one of {SECURITIES}, not {self.security!r}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class MailMessage:
    """One unseen message. `attachments` holds its XML and ZIP files (also those of forwarded
    messages inside it); `ignored_parts` counts the other attached files. An `oversized`
    message was not downloaded: only its headers and `size` are known."""

    uid: int
    uidvalidity: int
    message_id: str
    sender: str
    subject: str
    date: datetime | None
    size: int
    attachments: list[Attachment] = field(default_factory=list)
    ignored_parts: int = 0
    oversized: bool = False


class MailboxError(Exception):
    """Anything that went wrong with the mailbox, said in one Spanish line for the user.

    `kind` says what it was, for the caller to decide (retry later or ask for new settings):
    "login", "unreachable", "unavailable", "timeout", "tls", "folder", "uidvalidity" or
    "protocol"."""

    def __init__(self, message: str, *, kind: str = "protocol") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


# --- public API ------------------------------------------------------------------------------


def fetch_unseen(
    config: MailboxConfig,
    *,
    limit: int | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[MailMessage]:
    """The folder's unseen messages, oldest first (at most `limit`), none of them marked read."""
    with _session(config) as imap:
        uidvalidity = _select(imap, config, readonly=False)
        uids = _search_unseen(imap)
        if limit is not None:
            uids = uids[: max(limit, 0)]
        sizes = _sizes(imap, uids)
        messages = []
        for uid in uids:
            size = sizes.get(uid)
            if size is None:  # expunged meanwhile
                continue
            if size > max_message_bytes:
                logger.warning(
                    "mailbox %s@%s: message UID %s is %s bytes, over the %s limit: not downloaded",
                    config.username,
                    config.host,
                    uid,
                    size,
                    max_message_bytes,
                )
                header = _fetch_literal(imap, uid, "BODY.PEEK[HEADER]")
                if header is not None:
                    messages.append(_message(uid, uidvalidity, size, header, oversized=True))
                continue
            raw = _fetch_literal(imap, uid, "BODY.PEEK[]")
            if raw is not None:
                messages.append(_message(uid, uidvalidity, size, raw))
        logger.info(
            "mailbox %s@%s/%s: %d unseen message(s) read",
            config.username,
            config.host,
            config.folder,
            len(messages),
        )
        return messages


def mark_seen(
    config: MailboxConfig, uids: Iterable[int], *, uidvalidity: int | None = None
) -> None:
    """Set \\Seen on exactly these UIDs. With `uidvalidity` (from the MailMessage), refuses
    when the folder was recreated since: the same UIDs would then be other messages."""
    wanted = sorted({int(uid) for uid in uids})
    if not wanted:
        return
    with _session(config) as imap:
        current = _select(imap, config, readonly=False)
        if uidvalidity is not None and current != uidvalidity:
            raise MailboxError(
                f"La carpeta «{config.folder}» cambió desde la lectura (UIDVALIDITY "
                f"{uidvalidity} → {current}); los correos se leerán de nuevo.",
                kind="uidvalidity",
            )
        for chunk in _chunks(wanted):
            _ok(imap.uid("STORE", chunk, "+FLAGS.SILENT", r"(\Seen)"), config, "STORE")


def append_message(config: MailboxConfig, raw: bytes, *, seen: bool = False) -> None:
    """Put a whole message (RFC 5322 bytes) into the folder, unseen unless `seen`: how the
    sandbox's make-believe supplier delivers to a company's mailbox without an SMTP server."""
    flags = r"(\Seen)" if seen else None
    with _session(config) as imap:
        typ, data = imap.append(_imap_quote(config.folder), flags, None, raw)
        _ok((typ, list(data)), config, "APPEND")


# --- the connection --------------------------------------------------------------------------


def _where(config: MailboxConfig) -> str:
    return f"{config.host}:{config.port}"


@contextmanager
def _session(config: MailboxConfig) -> Iterator[imaplib.IMAP4]:
    """A logged-in connection; any imaplib/socket/ssl error inside becomes a MailboxError."""
    imap: imaplib.IMAP4 | None = None
    try:
        with _translated(config):
            imap = _connect(config)
            _login(imap, config)
            yield imap
    except BaseException:
        if imap is not None:
            with suppress(Exception):
                imap.shutdown()
        raise
    else:
        with suppress(Exception):
            imap.logout()


@contextmanager
def _translated(config: MailboxConfig) -> Iterator[None]:
    where = _where(config)
    try:
        yield
    except MailboxError:
        raise
    except socket.gaierror as exc:
        raise MailboxError(
            f"No se encontró el servidor de correo «{config.host}».", kind="unreachable"
        ) from exc
    except TimeoutError as exc:
        raise MailboxError(
            f"El servidor de correo {where} no respondió en {config.timeout:g} segundos.",
            kind="timeout",
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise MailboxError(
            f"El certificado del servidor de correo {where} no es válido: "
            f"{exc.verify_message or exc.reason}.",
            kind="tls",
        ) from exc
    except ssl.SSLError as exc:
        raise MailboxError(
            f"No se pudo establecer una conexión segura con {where} "
            f"(¿el puerto y la seguridad «{config.security}» son los correctos?).",
            kind="tls",
        ) from exc
    except ConnectionRefusedError as exc:
        raise MailboxError(
            f"El servidor de correo {where} rechazó la conexión (¿puerto correcto?).",
            kind="unreachable",
        ) from exc
    except imaplib.IMAP4.abort as exc:
        raise MailboxError(
            f"El servidor de correo {where} cortó la conexión: {_text(exc)}", kind="protocol"
        ) from exc
    except imaplib.IMAP4.error as exc:
        raise MailboxError(
            f"El servidor de correo {where} respondió con un error: {_text(exc)}",
            kind="protocol",
        ) from exc
    except OSError as exc:
        raise MailboxError(
            f"No se pudo conectar con el servidor de correo {where}: "
            f"{exc.strerror or type(exc).__name__}.",
            kind="unreachable",
        ) from exc


def _text(exc: BaseException) -> str:
    """An imaplib error's server text on one line (imaplib passes bytes at times)."""
    return _said(list(exc.args)) or type(exc).__name__


def _said(data: Sequence[object]) -> str:
    """The server's last words in a response, on one line."""
    last = data[-1] if data else ""
    text = last.decode("utf-8", "replace") if isinstance(last, bytes) else str(last or "")
    return " ".join(text.split())[:200]


def _context(config: MailboxConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=config.cafile)


def _connect(config: MailboxConfig) -> imaplib.IMAP4:
    logger.debug(
        "mailbox: connecting to %s as %s (%s)", _where(config), config.username, config.security
    )
    if config.security == "ssl":
        return imaplib.IMAP4_SSL(
            config.host, config.port, ssl_context=_context(config), timeout=config.timeout
        )
    imap = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
    if config.security == "starttls":
        if "STARTTLS" not in imap.capabilities:
            with suppress(Exception):
                imap.shutdown()
            raise MailboxError(
                f"El servidor de correo {_where(config)} no ofrece STARTTLS; "
                "use SSL o revise el puerto.",
                kind="tls",
            )
        imap.starttls(ssl_context=_context(config))
    return imap


def _login(imap: imaplib.IMAP4, config: MailboxConfig) -> None:
    try:
        try:
            imap.login(config.username, config.password)
        except UnicodeEncodeError:
            # LOGIN is ASCII only; AUTHENTICATE PLAIN carries UTF-8 credentials.
            credentials = f"\0{config.username}\0{config.password}".encode()
            imap.authenticate("PLAIN", lambda _challenge: credentials)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        # The server's words go to the log (they never hold the password: imaplib does not
        # echo it); the user reads what to do.
        said = _text(exc)
        logger.warning("mailbox %s@%s: login refused: %s", config.username, config.host, said)
        where = _where(config)
        if "[UNAVAILABLE]" in said or "[SERVERBUG]" in said:
            message = f"El servidor de correo {where} no pudo validar el acceso por ahora."
            raise MailboxError(message, kind="unavailable") from None
        if "[PRIVACYREQUIRED]" in said:
            message = f"El servidor de correo {where} exige conexión segura: use SSL o STARTTLS."
            raise MailboxError(message, kind="tls") from None
        raise MailboxError(
            f"El servidor de correo {where} rechazó el usuario «{config.username}» "
            "o su contraseña.",
            kind="login",
        ) from None


def _select(imap: imaplib.IMAP4, config: MailboxConfig, *, readonly: bool) -> int:
    """Open the folder; returns its UIDVALIDITY."""
    typ, data = imap.select(_imap_quote(config.folder), readonly=readonly)
    if typ != "OK":
        logger.warning(
            "mailbox %s@%s: SELECT %s refused: %s",
            config.username,
            config.host,
            config.folder,
            _said(data),
        )
        raise MailboxError(
            f"La carpeta «{config.folder}» no existe en el buzón de {config.username}.",
            kind="folder",
        )
    _, validity = imap.response("UIDVALIDITY")
    try:
        return int(validity[-1])
    except (TypeError, ValueError, IndexError):
        return 0


def _ok(result: tuple[str, list[object]], config: MailboxConfig, command: str) -> list[object]:
    typ, data = result
    if typ != "OK":
        raise MailboxError(
            f"El servidor de correo {_where(config)} no aceptó {command}: {_said(data)}",
            kind="protocol",
        )
    return data


def _search_unseen(imap: imaplib.IMAP4) -> list[int]:
    typ, data = imap.uid("SEARCH", "UNSEEN", "UNDELETED")
    if typ != "OK":
        raise imaplib.IMAP4.error(data[-1] if data else "SEARCH")
    found = b" ".join(item for item in data if isinstance(item, bytes))
    return sorted(int(uid) for uid in found.split())


def _chunks(uids: list[int]) -> Iterator[str]:
    for start in range(0, len(uids), _UID_CHUNK):
        yield ",".join(str(uid) for uid in uids[start : start + _UID_CHUNK])


_UID_RE = re.compile(rb"\bUID (\d+)")
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")


def _sizes(imap: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for chunk in _chunks(uids):
        typ, data = imap.uid("FETCH", chunk, "(UID RFC822.SIZE)")
        if typ != "OK":
            raise imaplib.IMAP4.error(data[-1] if data else "FETCH")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid, size = _UID_RE.search(line), _SIZE_RE.search(line)
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _fetch_literal(imap: imaplib.IMAP4, uid: int, item: str) -> bytes | None:
    """One message's BODY.PEEK[...] literal; None when it is gone (expunged meanwhile)."""
    typ, data = imap.uid("FETCH", str(uid), f"(UID {item})")
    if typ != "OK":
        raise imaplib.IMAP4.error(data[-1] if data else "FETCH")
    for part in data:
        if not isinstance(part, tuple) or len(part) != 2:
            continue
        head, literal = part
        if b"BODY[" not in head:
            continue  # an unsolicited FETCH (flags of another message)
        found = _UID_RE.search(head)
        if found and int(found.group(1)) != uid:
            continue
        return bytes(literal)
    return None


def _imap_quote(name: str) -> str:
    """A folder name as an IMAP quoted string, in modified UTF-7 (RFC 3501 §5.1.3)."""
    encoded = _mutf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mutf7(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            b64 = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + b64.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


# --- the message -----------------------------------------------------------------------------


def _message(
    uid: int, uidvalidity: int, size: int, raw: bytes, *, oversized: bool = False
) -> MailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    attachments: list[Attachment] = []
    ignored = 0
    if not oversized:
        attachments, ignored = _attachments(msg)
    return MailMessage(
        uid=uid,
        uidvalidity=uidvalidity,
        message_id=_header(msg, "Message-ID"),
        sender=email.utils.parseaddr(_header(msg, "From"))[1],
        subject=_header(msg, "Subject"),
        date=_date(_header(msg, "Date")),
        size=size,
        attachments=attachments,
        ignored_parts=ignored,
        oversized=oversized,
    )


def _header(msg: Message, name: str) -> str:
    """A header decoded (RFC 2047) on one line; "" when missing or unreadable."""
    try:
        value = msg.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:  # the header parser on a malformed header: the message still counts
        return ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _attachments(msg: Message, depth: int = 0) -> tuple[list[Attachment], int]:
    kept: list[Attachment] = []
    ignored = 0
    for part in msg.walk():
        if part.is_multipart():  # multipart/* and message/rfc822: walk() goes inside
            continue
        content_type = part.get_content_type()
        filename = _filename(part)
        is_file = filename is not None or part.get_content_disposition() == "attachment"
        xml_type = content_type in XML_CONTENT_TYPES or content_type.endswith("+xml")
        if not is_file and not xml_type:
            continue  # the message's own text
        try:
            data = part.get_payload(decode=True)
        except (ValueError, TypeError, LookupError):
            data = None
        if not isinstance(data, bytes):
            ignored += 1
            continue
        name = filename or ""
        lower = name.lower()
        if lower.endswith(".eml") and depth < _MAX_NESTING:
            # A forwarded message saved as a file rather than attached as message/rfc822.
            inner, inner_ignored = _attachments(
                email.message_from_bytes(data, policy=email.policy.default), depth + 1
            )
            kept += inner
            ignored += inner_ignored
            continue
        if lower.endswith(KEPT_EXTENSIONS) or xml_type or content_type in ZIP_CONTENT_TYPES:
            if not lower.endswith(KEPT_EXTENSIONS):
                name = (name or "adjunto") + (
                    ".zip" if content_type in ZIP_CONTENT_TYPES else ".xml"
                )
            kept.append(Attachment(filename=name, content_type=content_type, data=data))
        else:
            ignored += 1
    return kept, ignored


def _filename(part: Message) -> str | None:
    """The part's file name: RFC 2231 (charset, continuations) and RFC 2047 decoded, and
    reduced to a base name (no directories from a sender's machine)."""
    try:
        name = part.get_filename()
    except (ValueError, TypeError, LookupError):
        return None
    if name is None:
        return None
    name = str(name)
    if "=?" in name:  # RFC 2047 inside a parameter: common, though not standard
        with suppress(ValueError, LookupError, email.errors.HeaderParseError):
            name = str(email.header.make_header(email.header.decode_header(name)))
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name or None
