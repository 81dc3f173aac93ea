"""Sending that keeps up with issuing: documents issued one by one within SII_ENVELOPE_WINDOW
travel in one envelope (dte.services.envelope_collect), the first question about an upload
comes soon after it and the wait doubles (dte.sending.poll_delay), and a send or a poll queued
as a task is leased so that the beat tick does not queue it a second time."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from dte import dispatch, sending, services
from dte.models import Dte, Envelope
from tests.dte.sii.conftest import make_drafts
from tests.dte.sii.test_fault_matrix import check_outcome
from tests.dte.sii.test_flow import run_outbox

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch):
    """The sending tasks services queue (name, args, delay), instead of running them; the PDF
    that a broker's presence also queues after each issue is left out."""
    calls = []

    def record(name, *args, delay=0.0):
        if name != "dte.dte_store_pdf":
            calls.append((name, args, delay))

    monkeypatch.setattr(dispatch, "run_task", record)
    return calls


def test_documents_issued_within_the_window_share_one_envelope(sii, issuer, clerk, queued):
    sii.SII_ENVELOPE_WINDOW = 1
    drafts = make_drafts(issuer, clerk, n=3) + make_drafts(issuer, clerk, tipo=39, n=2)
    dtes = [services.dte_issue(document=d, actor=clerk) for d in drafts]
    assert [d.status for d in dtes] == ["signed"] * 5 and all(d.envelope_id is None for d in dtes)
    # One collection asked for the whole window, a window after the first commit.
    assert queued == [("dte.envelope_collect", (issuer.pk, False), 1)]
    queued.clear()
    cache.clear()  # the window is over when its collection runs
    assert services.envelope_collect(issuer.pk) == 5
    envelopes = {e.kind: e for e in Envelope.objects.all()}
    assert set(envelopes) == {"EnvioDTE", "EnvioBOLETA"}  # one per kind, not one per document
    assert envelopes["EnvioDTE"].dtes.count() == 3 and envelopes["EnvioBOLETA"].dtes.count() == 2
    assert set(Dte.objects.values_list("status", flat=True)) == {"queued"}
    # A collection asks for a follow-up a window later; one that finds nothing ends the chain.
    assert queued == [("dte.envelope_collect", (issuer.pk, True), 1)]
    queued.clear()
    cache.clear()
    assert services.envelope_collect(issuer.pk, follow_up=True) == 0 and queued == []
    # Within a window, whoever asked first schedules the one collection: an issue's request
    # takes the window, and a collection's follow-up inside it is not scheduled twice.
    sending.collect_soon(issuer.pk)
    assert services.envelope_collect(issuer.pk) == 0
    assert queued == [("dte.envelope_collect", (issuer.pk, False), 1)]
    run_outbox()
    check_outcome(list(Dte.objects.all()), "accepted")


def test_a_window_of_zero_sends_each_issue_at_once(issuer, clerk, queued):
    (draft,) = make_drafts(issuer, clerk)
    dte = services.dte_issue(document=draft, actor=clerk)
    assert dte.status == "queued" and dte.envelope_id and queued == []


def test_the_beat_still_envelopes_what_a_lost_collection_left(issuer, clerk, queued, settings):
    settings.SII_ENVELOPE_WINDOW = 1
    dtes = [services.dte_issue(document=d, actor=clerk) for d in make_drafts(issuer, clerk, n=2)]
    Dte.objects.filter(pk__in=[d.pk for d in dtes]).update(
        created_at=timezone.now() - timedelta(seconds=settings.SII_ENVELOPE_GRACE + 1)
    )
    assert services.envelope_stranded() == 2
    assert Envelope.objects.count() == 1


def test_polls_start_soon_and_back_off(settings):
    settings.SII_POLL_FIRST = 1
    settings.SII_POLL_INTERVAL = 20
    delays = [sending.poll_delay(n) for n in range(12)]
    assert delays[:6] == [1, 2, 4, 8, 16, 20]
    assert delays[6:10] == [20] * 4 and delays[10:] == [40, 40]  # slower as it takes longer


def test_a_queued_task_leases_its_envelope_so_the_beat_does_not_queue_it_again(
    issuer, clerk, queued, settings
):
    settings.SII_AUTO_SEND = True
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a worker follows the envelopes
    (draft,) = make_drafts(issuer, clerk)
    dte = services.dte_issue(document=draft, actor=clerk)
    assert queued == [("dte.envelope_send", (dte.envelope_id,), 0.0)]
    envelope = Envelope.objects.get(pk=dte.envelope_id)
    lease = (envelope.next_attempt_at - timezone.now()).total_seconds()
    assert settings.SII_DISPATCH_LEASE - 5 < lease <= settings.SII_DISPATCH_LEASE
    assert sending.outbox_claim() == ([], [])  # the tick leaves it to its task
    # Its task lost: once the lease has run out, the tick queues it again.
    later = timezone.now() + timedelta(seconds=settings.SII_DISPATCH_LEASE + 1)
    assert sending.outbox_claim(later) == ([envelope.pk], [])


def test_after_an_upload_the_first_poll_is_queued_soon(sii, issuer, clerk, queued):
    sii.SII_AUTO_SEND = True
    sii.CELERY_TASK_ALWAYS_EAGER = False
    sii.SII_POLL_FIRST = 1
    sii.SII_POLL_INTERVAL = 20
    (draft,) = make_drafts(issuer, clerk)
    dte = services.dte_issue(document=draft, actor=clerk)
    queued.clear()
    assert sending.envelope_send(dte.envelope_id).status == "sent"
    assert queued == [("dte.envelope_refresh", (dte.envelope_id,), 1)]
    queued.clear()
    step = sending.envelope_refresh(dte.envelope_id)  # the sandbox: in progress the first time
    assert step.status == "in_progress"
    assert queued == [("dte.envelope_refresh", (dte.envelope_id,), 2)]
    queued.clear()
    assert sending.envelope_refresh(dte.envelope_id).status == "accepted"
    assert queued == [("dte.dte_email", (dte.pk,), 0.0)]  # no more questions; the e-mail
    check_outcome([dte], "accepted")


def test_a_collection_leaves_documents_someone_else_will_envelope(issuer, clerk, queued, settings):
    """A certification set is signed document by document and enveloped as one set: a
    collection asked for by an issue meanwhile must not take part of it."""
    settings.SII_ENVELOPE_WINDOW = 1
    set_documents = [
        services.dte_issue(document=d, actor=clerk, envelope=False)
        for d in make_drafts(issuer, clerk, n=2)
    ]
    (single,) = make_drafts(issuer, clerk)
    single = services.dte_issue(document=single, actor=clerk)
    assert services.envelope_collect(issuer.pk) == 1
    single.refresh_from_db()
    assert single.envelope_id and single.status == "queued"
    for dte in set_documents:
        dte.refresh_from_db()
        assert dte.status == "signed" and dte.envelope_id is None
    (envelope,) = services.envelope_create(dtes=set_documents, actor=clerk)
    assert envelope.dtes.count() == 2
