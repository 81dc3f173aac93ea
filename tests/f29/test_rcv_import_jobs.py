"""The RCV import as a job: the file streamed in chunks (f29.rcv.RcvStream), the service that
writes chunk by chunk with progress and resumes (f29.services.rcv_import_run), and the API's
202 and status endpoint."""

import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import TestCase

from erp.models import PurchaseDocument
from f29 import services
from f29.models import RcvEntry, RcvImport
from f29.rcv import RcvStream, parse_rcv

RCV = Path(__file__).resolve().parent.parent / "data" / "rcv"
COMPANY = "76086428-5"
IMPORTS = f"/api/v1/companies/{COMPANY}/rcv-imports/"
REGISTRO = (RCV / "compras_registro_2026-10.csv").read_bytes()


def stream(content: bytes) -> RcvStream:
    return RcvStream(io.BytesIO(content), kind="compras", contribuyente_rut=COMPANY)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 1000])
def test_chunks_give_what_the_whole_file_gives(size):
    whole = parse_rcv(REGISTRO, kind="compras", contribuyente_rut=COMPANY)
    chunks = list(stream(REGISTRO).chunks(size=size))
    assert tuple(r for c in chunks for r in c.rows) == whole.rows
    assert tuple(r for c in chunks for r in c.rejected) == whole.rejected
    assert [c.last_line for c in chunks] == sorted(c.last_line for c in chunks)
    assert chunks[-1].bytes_read == len(REGISTRO)
    if size == 1:  # the "otros impuestos" rows stay with their document (lines 11-13)
        assert len(chunks) == 11 and [r.line for r in chunks[9].rows] == [11]


def test_a_document_repeated_in_a_later_chunk_is_reported():
    lines = REGISTRO.decode().split("\n")
    content = "\n".join([*lines, lines[1].replace("1;", "99;", 1)]).encode()
    rejected = [r for c in stream(content).chunks(size=2) for r in c.rejected]
    assert [(r.line, r.folio) for r in rejected] == [(len(lines) + 1, 10452)]
    assert "ya aparece en la línea 2" in rejected[0].reason


def test_the_file_is_never_read_whole():
    class Source(io.BytesIO):
        largest = 0

        def read(self, size=-1):
            assert size is not None and size >= 0, "read() of the whole file"
            Source.largest = max(Source.largest, size)
            return super().read(size)

    big = REGISTRO + b"\n" * (3 * 1024 * 1024)
    rows = [r for c in RcvStream(Source(big), kind="compras", contribuyente_rut=COMPANY).chunks()
            for r in c.rows]  # fmt: skip
    assert len(rows) == 11 and Source.largest <= 1024 * 1024


def test_run_is_idempotent_and_resumes_after_the_last_chunk(company):
    batch = services.rcv_import_create(
        company=company,
        actor=None,
        upload=ContentFile(REGISTRO, name="a.csv"),
        kind="compras",
        dispatch=False,
    )
    assert (batch.status, batch.size, batch.file.name != "") == ("queued", len(REGISTRO), True)
    # A first run died after some chunks: they are kept, and the next run skips them.
    RcvImport.objects.filter(pk=batch.pk).update(status="running", lines_read=5, created=4)
    done = services.rcv_import_run(import_id=batch.pk, chunk_lines=2)
    assert (done.status, done.percent, done.lines_read) == ("done", 100, 14)
    assert done.created == 4 + 7 and RcvEntry.objects.count() == 7  # lines 2-5 were skipped
    assert done.file.name == "" and done.finished_at is not None
    # Run again (a redelivered task): nothing happens.
    assert services.rcv_import_run(import_id=batch.pk).created == 11
    assert RcvEntry.objects.count() == 7 and PurchaseDocument.objects.count() == 7


def test_rejected_rows_kept_are_bounded(company, monkeypatch):
    monkeypatch.setattr(services, "MAX_REJECTED_KEPT", 1)
    batch = services.rcv_import(
        company=company,
        actor=None,
        content=(RCV / "compras_registro_filas_malas.csv").read_bytes(),
        filename="malas.csv",
        kind="compras",
    )
    assert batch.rejected == 2 and len(batch.rejected_rows) == 1


def test_an_error_mid_import_leaves_it_failed_with_a_reason(company, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "_write_rows", broken)
    batch = services.rcv_import(
        company=company, actor=None, content=REGISTRO, filename="a.csv", kind="compras"
    )
    assert batch.status == "failed" and "Error interno" in batch.error
    assert batch.file.name != ""  # kept, to look at or run again


def test_api_answers_202_with_the_import_and_its_status_url(api_for, clerk, company):
    api = api_for(clerk)
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        posted = api.post(
            IMPORTS, {"file": io.BytesIO(REGISTRO), "kind": "compras"}, format="multipart"
        )
    assert posted.status_code == 202, posted.json()
    body = posted.json()
    assert posted["Location"] == f"{IMPORTS}{body['id']}/"
    assert (body["status"], body["status_label"], body["percent"]) == ("queued", "En cola", 0)
    assert body["size"] == len(REGISTRO) and body["finished"] is False
    status = api.get(posted["Location"]).json()
    assert status["status"] == "queued" and not RcvEntry.objects.exists()  # not run yet
    for callback in callbacks:
        callback()
    status = api.get(posted["Location"]).json()
    assert (status["status"], status["percent"], status["finished"]) == ("done", 100, True)
    assert status["created"] == 11 and status["lines_read"] == 14
    assert api.get(f"{IMPORTS}999999/").status_code == 404
    assert api.get(f"{IMPORTS}abc/").status_code == 404


def test_import_page_while_running_shows_a_progress_bar_and_polls(client, clerk, company):
    batch = RcvImport.objects.create(
        company=company,
        kind="compras",
        estado="registro",
        filename="grande.csv",
        sha256="0",
        status="running",
        size=1000,
        bytes_read=420,
    )
    client.force_login(clerk)
    page = client.get(f"/rcv/importar/{batch.pk}/").content.decode()
    assert '<progress max="100" value="42">' in page and "Procesando" in page
    assert 'data-finished="false"' in page and f"rcv-imports/{batch.pk}/" in page
    assert "f29/rcv_progress.js" in page and "<script>" not in page
    assert 'id="import-report"' not in page
