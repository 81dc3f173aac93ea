"""No stranded documents: a batch whose envelope cannot be built keeps its signed documents
(and folios) SIGNED with the reason, and the beat tick envelopes and sends them later."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dte import services
from dte.models import Dte
from tests.dte.sii.conftest import make_drafts
from tests.dte.sii.test_fault_matrix import check_outcome, drive

pytestmark = pytest.mark.django_db(transaction=True)


def drafts(company, clerk, n=3):
    return make_drafts(company, clerk, n=n)


def test_an_envelope_failure_leaves_documents_signed_and_the_beat_sends_them(
    sii,
    issuer,
    clerk,
    monkeypatch,
    eager_tasks,
):
    from dte import tasks

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(services, "_envelope", broken)
        outcomes, envelopes = services.dte_issue_many(documents=drafts(issuer, clerk), actor=clerk)
    assert envelopes == [] and all(o.dte for o in outcomes)  # issued: folios taken, kept
    dtes = list(Dte.objects.filter(company=issuer).order_by("pk"))
    assert [d.status for d in dtes] == ["signed"] * 3
    assert all(d.envelope_id is None for d in dtes)
    assert "No se pudo armar el sobre (RuntimeError)" in dtes[0].events.last().message
    # Before the grace period nothing happens; after it, the beat tick wraps them.
    assert tasks.outbox_tick()["enveloped"] == 0
    Dte.objects.filter(pk__in=[d.pk for d in dtes]).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    assert tasks.outbox_tick()["enveloped"] == 3
    dtes = list(Dte.objects.filter(company=issuer).order_by("pk"))
    assert len({d.envelope_id for d in dtes}) == 1 and dtes[0].envelope_id
    drive(dtes)
    check_outcome(dtes, "accepted")


def test_a_beat_that_cannot_envelope_says_so_once(issuer, clerk, monkeypatch, settings):
    settings.SII_ENVELOPE_GRACE = 0
    with monkeypatch.context() as patch:
        patch.setattr(services, "_envelope", lambda *a, **kw: 1 / 0)
        services.dte_issue_many(documents=drafts(issuer, clerk, n=1), actor=clerk)
        for _ in range(3):
            assert services.envelope_stranded() == 0
    dte = Dte.objects.get(company=issuer)
    assert dte.status == "signed"
    notes = dte.events.filter(message__startswith="No se pudo armar el sobre")
    assert notes.count() == 1  # one line per reason, not one per tick
    assert services.envelope_stranded() == 1
    dte.refresh_from_db()
    assert dte.status == "queued" and dte.envelope_id
