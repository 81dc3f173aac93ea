"""Linear in the envelope's size: receiving an envelope makes the same number of queries
whatever its number of documents, and a status answer does not grow with the envelope.
(Timings: bench/sandbox_envelope.py.)"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dte.sandbox import processing
from dte.sandbox.models import Channel
from tests.dte.sandbox.material import EMISOR_RUT, NOW, SIGNER_RUT, envelope, issue

pytestmark = pytest.mark.django_db


def queries_to_receive(data: bytes) -> int:
    with CaptureQueriesContext(connection) as queries:
        processing.envelope_receive(
            channel=Channel.DTE,
            rut_sender=SIGNER_RUT,
            rut_company=EMISOR_RUT,
            file_name="EnvioDTE.xml",
            data=data,
        )
    return len(queries.captured_queries)


def test_receiving_makes_the_same_queries_for_2_or_14_documents(sii):
    small = [issue(33, f) for f in (701, 702)]
    large = [issue(33, f) for f in range(703, 715)] + [issue(61, 715), issue(61, 716)]
    per_type = 1  # the folios accepted before are looked up once per document type
    assert queries_to_receive(envelope(large)) == queries_to_receive(envelope(small)) + per_type
    # The same folios again (all "DTE Repetido"): still no query per document.
    later = NOW + timedelta(minutes=5)
    repeated_large = queries_to_receive(envelope(large, timestamp=later))
    assert repeated_large == queries_to_receive(envelope(small, timestamp=later)) + per_type


def test_document_state_is_one_query_whatever_the_envelope(sii):
    docs = [issue(33, f) for f in range(720, 730)]
    processing.envelope_receive(
        channel=Channel.DTE,
        rut_sender=SIGNER_RUT,
        rut_company=EMISOR_RUT,
        file_name="EnvioDTE.xml",
        data=envelope(docs),
    )
    for doc in (docs[0], docs[-1]):
        query = processing.DocumentQuery(EMISOR_RUT, 33, doc.folio)
        with CaptureQueriesContext(connection) as queries:
            state, document = processing.document_state(query)
        assert state == "DOK" and document is not None
        assert document.envelope.track_id  # loaded with it
        assert len(queries.captured_queries) == 1
