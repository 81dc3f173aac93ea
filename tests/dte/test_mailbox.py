"""dte.mailbox against a real IMAP server: the session's private Dovecot (tests/imapserver.py).

Each test gets a fresh account (`imap_account`), mail is dropped into its maildir as an MTA
would, and the flags are read back over IMAP to see what the client marked read."""

import base64
import io
import logging
import socket
import threading
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from dte.mailbox import MailboxConfig, MailboxError, fetch_unseen, mark_seen
from tests.imapserver import free_port

imap = pytest.mark.imap

DTE_XML = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    '<EnvioDTE xmlns="http://www.sii.cl/SiiDte" version="1.0"><SetDTE ID="SetDoc">'
    "<Caratula><RutEmisor>76086428-5</RutEmisor></Caratula>"
    "<DTE><Documento><RznSoc>Compañía Proveedora Ltda.</RznSoc></Documento></DTE>"
    "</SetDTE></EnvioDTE>\n"
).encode("iso-8859-1")
SENT = datetime(2025, 3, 14, 10, 30, tzinfo=UTC)


def config_for(account, **overrides) -> MailboxConfig:
    values = {
        "host": account.host,
        "port": account.port,
        "username": account.username,
        "password": account.password,
        "security": "none",
        "timeout": 10,
    }
    values.update(overrides)
    return MailboxConfig(**values)


def mail(subject="Envío de DTE", *, sender="Proveedor SpA <dte@proveedor.cl>", body="Adjunto."):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "recepcion@empresa.cl"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(SENT)
    msg["Message-ID"] = make_msgid(domain="proveedor.cl")
    msg.set_content(body)
    return msg


def with_xml(filename="DTE_33_1234.xml", data=DTE_XML, **kwargs) -> EmailMessage:
    msg = mail(**kwargs)
    msg.add_attachment(data, maintype="application", subtype="xml", filename=filename)
    return msg


def zipped(**files: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- what a poll reads -----------------------------------------------------------------------


@imap
def test_an_xml_attachment_is_read_with_the_message_headers(imap_account):
    uid = imap_account.deliver(with_xml(subject="Factura electrónica N° 1234").as_bytes())

    [message] = fetch_unseen(config_for(imap_account))

    assert message.uid == uid
    assert message.uidvalidity > 0
    assert message.sender == "dte@proveedor.cl"
    assert message.subject == "Factura electrónica N° 1234"
    assert message.message_id.endswith("@proveedor.cl>")
    assert message.date == SENT
    assert not message.oversized and message.size > len(DTE_XML)
    [attachment] = message.attachments
    assert attachment.filename == "DTE_33_1234.xml"
    assert attachment.content_type == "application/xml"
    assert attachment.data == DTE_XML  # the bytes as sent: ISO-8859-1 untouched
    assert message.ignored_parts == 0


@imap
def test_a_zip_is_kept_and_other_files_are_counted_as_ignored(imap_account):
    archive = zipped(**{"DTE_33_1.xml": DTE_XML, "DTE_33_2.xml": DTE_XML})
    msg = mail()
    msg.add_attachment(archive, maintype="application", subtype="zip", filename="dtes.zip")
    msg.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="f.pdf")
    msg.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="logo.png")
    imap_account.deliver(msg.as_bytes())

    [message] = fetch_unseen(config_for(imap_account))

    [attachment] = message.attachments
    assert (attachment.filename, attachment.content_type) == ("dtes.zip", "application/zip")
    assert zipfile.ZipFile(io.BytesIO(attachment.data)).namelist() == [
        "DTE_33_1.xml",
        "DTE_33_2.xml",
    ]
    assert message.ignored_parts == 2


@imap
def test_a_windows_1252_file_name_in_rfc_2231_form_is_decoded(imap_account):
    encoded = base64.encodebytes(DTE_XML).decode()
    raw = (
        "From: =?windows-1252?Q?Compa=F1=EDa_Proveedora?= <dte@proveedor.cl>\r\n"
        "To: recepcion@empresa.cl\r\n"
        "Subject: =?windows-1252?Q?Factura_a=F1o_2025?=\r\n"
        "Message-ID: <w1252@proveedor.cl>\r\n"
        "Date: Fri, 14 Mar 2025 10:30:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="limite"\r\n'
        "\r\n"
        "--limite\r\n"
        "Content-Type: text/plain; charset=windows-1252\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Adjunto la factura del a=F1o.\r\n"
        "--limite\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*=windows-1252''Factura%20N%BA%20123%20a%F1o.xml\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{encoded}"
        "--limite\r\n"
        "Content-Type: text/xml\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*0*=windows-1252''Recepci%F3n%20de;\r\n"
        " filename*1*=%20mercader%EDas.xml\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{encoded}"
        "--limite--\r\n"
    ).encode("ascii")
    imap_account.deliver(raw)

    [message] = fetch_unseen(config_for(imap_account))

    assert message.subject == "Factura año 2025"
    assert [a.filename for a in message.attachments] == [
        "Factura Nº 123 año.xml",
        "Recepción de mercaderías.xml",
    ]
    assert all(a.data == DTE_XML for a in message.attachments)


@imap
def test_an_rfc_2047_file_name_and_an_unnamed_xml_part_are_kept(imap_account):
    encoded = base64.encodebytes(DTE_XML).decode()
    raw = (
        "From: dte@proveedor.cl\r\n"
        "Subject: Guia\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="limite"\r\n'
        "\r\n"
        "--limite\r\n"
        # Outlook and others put RFC 2047 words inside the parameter, against the standard.
        'Content-Type: application/xml; name="=?UTF-8?B?R3XDrWEgYcOxby54bWw=?="\r\n'
        'Content-Disposition: attachment; filename="=?UTF-8?B?R3XDrWEgYcOxby54bWw=?="\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{encoded}"
        "--limite\r\n"
        "Content-Type: text/xml; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{encoded}"
        "--limite--\r\n"
    ).encode("ascii")
    imap_account.deliver(raw)

    [message] = fetch_unseen(config_for(imap_account))

    assert [a.filename for a in message.attachments] == ["Guía año.xml", "adjunto.xml"]
    assert [a.content_type for a in message.attachments] == ["application/xml", "text/xml"]
    assert all(a.data == DTE_XML for a in message.attachments)
    assert message.date is None and message.message_id == ""


@imap
def test_a_forwarded_message_gives_its_attachment(imap_account):
    forwarded = with_xml(filename="DTE_34_77.xml", subject="Factura exenta 77")
    outer = mail("RV: Factura exenta 77", sender="Contabilidad <conta@empresa.cl>")
    outer.add_attachment(forwarded)  # message/rfc822
    # ...and one forwarded as a .eml file, as some clients do.
    eml = with_xml(filename="DTE_61_5.xml", subject="Nota de crédito 5").as_bytes()
    outer.add_attachment(eml, maintype="application", subtype="octet-stream", filename="nc.eml")
    imap_account.deliver(outer.as_bytes())

    [message] = fetch_unseen(config_for(imap_account))

    assert message.sender == "conta@empresa.cl"
    assert [a.filename for a in message.attachments] == ["DTE_34_77.xml", "DTE_61_5.xml"]
    assert all(a.data == DTE_XML for a in message.attachments)


@imap
def test_a_message_without_attachments_is_listed_empty(imap_account):
    imap_account.deliver(mail("Consulta", body="¿Recibieron la factura?").as_bytes())

    [message] = fetch_unseen(config_for(imap_account))

    assert message.attachments == [] and message.ignored_parts == 0
    assert message.subject == "Consulta"


@imap
def test_only_unseen_messages_oldest_first_and_limit(imap_account):
    imap_account.deliver(with_xml(subject="ya leído").as_bytes(), seen=True)
    uids = [imap_account.deliver(with_xml(subject=f"factura {n}").as_bytes()) for n in range(3)]
    config = config_for(imap_account)

    assert [m.uid for m in fetch_unseen(config)] == uids
    assert [m.subject for m in fetch_unseen(config, limit=2)] == ["factura 0", "factura 1"]


# --- reading marks nothing; mark_seen marks exactly what it is told ---------------------------


@imap
def test_fetching_does_not_mark_anything_seen(imap_account):
    uids = [imap_account.deliver(with_xml(subject=f"f{n}").as_bytes()) for n in range(2)]
    config = config_for(imap_account)

    fetch_unseen(config)
    fetch_unseen(config)

    for uid in uids:
        assert "\\Seen" not in imap_account.flags(uid)
    assert imap_account.unseen_uids() == set(uids)
    assert len(fetch_unseen(config)) == 2


@imap
def test_mark_seen_marks_exactly_the_given_uids(imap_account):
    first, second, third = (
        imap_account.deliver(with_xml(subject=f"f{n}").as_bytes()) for n in range(3)
    )
    config = config_for(imap_account)
    [m1, _, m3] = fetch_unseen(config)

    mark_seen(config, [m1.uid, m3.uid], uidvalidity=m1.uidvalidity)

    assert "\\Seen" in imap_account.flags(first)
    assert "\\Seen" not in imap_account.flags(second)
    assert "\\Seen" in imap_account.flags(third)
    assert [m.uid for m in fetch_unseen(config)] == [second]
    mark_seen(config, [])  # nothing to do: not even a connection


@imap
def test_mark_seen_refuses_uids_of_a_recreated_folder(imap_account):
    uid = imap_account.deliver(with_xml().as_bytes())
    config = config_for(imap_account)
    [message] = fetch_unseen(config)

    with pytest.raises(MailboxError) as raised:
        mark_seen(config, [uid], uidvalidity=message.uidvalidity + 1)

    assert raised.value.kind == "uidvalidity"
    assert "\\Seen" not in imap_account.flags(uid)


@imap
def test_an_oversized_message_is_reported_not_downloaded(imap_account):
    big = with_xml(subject="Factura con anexo enorme", data=DTE_XML * 200)
    uid = imap_account.deliver(big.as_bytes())
    small_uid = imap_account.deliver(with_xml(subject="normal").as_bytes())

    messages = fetch_unseen(config_for(imap_account), max_message_bytes=20_000)

    assert [(m.uid, m.oversized) for m in messages] == [(uid, True), (small_uid, False)]
    assert messages[0].subject == "Factura con anexo enorme"
    assert messages[0].size > 20_000 and messages[0].attachments == []
    assert "\\Seen" not in imap_account.flags(uid)


@imap
def test_another_folder_with_spaces_and_accents(imap_account):
    # "Facturación recibida" in IMAP's modified UTF-7.
    imap_account.create_folder("Facturaci&APM-n recibida")
    uid = imap_account.deliver(with_xml().as_bytes(), folder="Facturaci&APM-n recibida")
    imap_account.deliver(mail("en INBOX").as_bytes())
    config = config_for(imap_account, folder="Facturación recibida")

    [message] = fetch_unseen(config)
    mark_seen(config, [message.uid])

    assert message.uid == uid and message.attachments[0].filename == "DTE_33_1234.xml"
    assert "\\Seen" in imap_account.flags(uid, folder="Facturaci&APM-n recibida")


# --- connections and errors ------------------------------------------------------------------


@imap
def test_implicit_tls_and_starttls_with_the_servers_certificate(imap_account, imap_server):
    imap_account.deliver(with_xml().as_bytes())
    cafile = str(imap_server.cafile)

    over_ssl = config_for(imap_account, security="ssl", port=imap_server.imaps_port, cafile=cafile)
    over_starttls = config_for(imap_account, security="starttls", cafile=cafile)

    assert len(fetch_unseen(over_ssl)) == 1
    assert len(fetch_unseen(over_starttls)) == 1


@imap
def test_an_untrusted_certificate_is_refused(imap_account, imap_server):
    config = config_for(imap_account, security="ssl", port=imap_server.imaps_port)

    with pytest.raises(MailboxError) as raised:
        fetch_unseen(config)

    assert raised.value.kind == "tls"
    assert "certificado" in str(raised.value)


@imap
def test_a_non_ascii_password_logs_in(imap_server):
    account = imap_server.add_user(password="contraseña-Ñandú")
    account.deliver(with_xml().as_bytes())

    assert len(fetch_unseen(config_for(account))) == 1


@imap
def test_a_wrong_password_is_a_clear_error_that_never_shows_the_password(imap_account, caplog):
    caplog.set_level(logging.DEBUG)
    config = config_for(imap_account, password="clave-equivocada-123")

    with pytest.raises(MailboxError) as raised:
        fetch_unseen(config)

    error = raised.value
    assert error.kind == "login"
    assert str(error).startswith("El servidor de correo 127.0.0.1:")
    assert f"rechazó el usuario «{imap_account.username}» o su contraseña." in str(error)
    assert "\n" not in str(error)
    shown = [str(error), repr(error), repr(config), caplog.text, str(error.__cause__)]
    assert not any("clave-equivocada-123" in text for text in shown)


@imap
def test_a_missing_folder_is_a_clear_error(imap_account):
    with pytest.raises(MailboxError) as raised:
        fetch_unseen(config_for(imap_account, folder="DTE Proveedores"))

    assert raised.value.kind == "folder"
    assert str(raised.value) == (
        f"La carpeta «DTE Proveedores» no existe en el buzón de {imap_account.username}."
    )


def test_a_closed_port_is_unreachable():
    config = MailboxConfig("127.0.0.1", free_port(), "u", "p", security="none", timeout=5)

    with pytest.raises(MailboxError) as raised:
        fetch_unseen(config)

    assert raised.value.kind == "unreachable"
    assert "rechazó la conexión" in str(raised.value)


def test_an_unknown_host_is_unreachable():
    config = MailboxConfig("imap.no-existe.invalid", 993, "u", "p", timeout=5)

    with pytest.raises(MailboxError) as raised:
        fetch_unseen(config)

    assert raised.value.kind == "unreachable"
    assert str(raised.value) == "No se encontró el servidor de correo «imap.no-existe.invalid»."


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    config = MailboxConfig(
        "127.0.0.1", listener.getsockname()[1], "u", "p", security="none", timeout=0.5
    )

    try:
        with pytest.raises(MailboxError) as raised:
            fetch_unseen(config)
    finally:
        for conn, _ in accepted:
            conn.close()
        listener.close()

    assert raised.value.kind == "timeout"
    assert (
        str(raised.value)
        == f"El servidor de correo 127.0.0.1:{config.port} no respondió en 0.5 segundos."
    )


def test_the_config_validates_and_hides_the_password():
    with pytest.raises(ValueError):
        MailboxConfig("h", 993, "u", "p", security="tls")  # type: ignore[arg-type]
    assert "secreto" not in repr(MailboxConfig("h", 993, "u", "secreto"))
