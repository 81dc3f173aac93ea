"""DTEUpload: authentication, the sender's permission, what is not XML, repeated files."""

import gzip

import pytest
from lxml import etree

from dte.sandbox.models import ReceivedEnvelope
from tests.dte.sandbox.conftest import make_token
from tests.dte.sandbox.material import envelope, issue

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def envio() -> bytes:
    return envelope([issue(33, 11)])


def test_upload_without_token_is_status_5(sii, envio):
    root = sii.upload(envio, None)
    assert root.tag == "RECEPCIONDTE"
    assert root.findtext("STATUS") == "5"
    assert root.find("TRACKID") is None
    assert not ReceivedEnvelope.objects.exists()


def test_upload_with_an_unknown_or_expired_token_is_status_5(sii, envio):
    assert sii.upload(envio, "NOEXISTE").findtext("STATUS") == "5"
    assert sii.upload(envio, make_token(ttl=-1)).findtext("STATUS") == "5"


def test_upload_with_token_answers_a_ten_digit_track_id(sii, envio, token):
    response = sii.upload_raw(envio, token, name="EnvioDTE--76086428-5.xml")
    root = etree.fromstring(response.content)
    assert response.content.startswith(b'<?xml version="1.0"?>')
    assert root.findtext("STATUS") == "0"
    assert root.findtext("RUTSENDER") == "12345678-5"
    assert root.findtext("RUTCOMPANY") == "76086428-5"
    assert root.findtext("FILE") == "EnvioDTE--76086428-5.xml"
    assert len(root.findtext("TIMESTAMP")) == 19
    track_id = root.findtext("TRACKID")
    assert len(track_id) == 10 and track_id.isdigit()
    stored = ReceivedEnvelope.objects.get(track_id=int(track_id))
    assert bytes(stored.file.data) == envio
    assert stored.sender_rut == "12345678-5" and stored.company_rut == "76086428-5"


def test_the_same_bytes_again_are_status_99_with_the_original_track_id(sii, envio, token):
    first = sii.send(envio, token)
    again = sii.upload(envio, token)
    assert again.findtext("STATUS") == "99"
    assert again.findtext("TRACKID") == str(first)
    assert again.findtext("DETAIL/ERROR")
    assert ReceivedEnvelope.objects.count() == 1


def test_a_sender_other_than_the_token_holder_is_status_1(sii, envio, token):
    root = sii.upload(envio, token, sender="11111111-1")
    assert root.findtext("STATUS") == "1"
    assert "sin permiso" in root.findtext("DETAIL/ERROR")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", "2"),
        (b"esto no es XML", "7"),
        (b'<?xml version="1.0"?><EnvioDTE><SetDTE>', "3"),
    ],
)
def test_a_file_that_is_not_xml_is_refused_at_upload(sii, token, data, status):
    root = sii.upload(data, token)
    assert root.findtext("STATUS") == status
    assert root.findtext("DETAIL/ERROR")
    assert root.find("TRACKID") is None


def test_a_bad_company_rut_is_status_minus_1(sii, envio, token):
    assert sii.upload(envio, token, company="76086428-6").findtext("STATUS") == "-1"


def test_a_gzipped_file_is_accepted(sii, envio, token):
    assert sii.send(gzip.compress(envio), token) > 0


def test_upload_only_accepts_post(client):
    assert client.get("/_sii/cgi_dte/UPL/DTEUpload").status_code == 405
