"""Every request to the SII carries the browser-like User-Agent, whatever kind of call came
before it in the process (zeep rewrites its session's User-Agent when it builds a transport).

A stdlib HTTP server stands in for the SII and records the header of each request it gets, on
the wire; its answers are the sandbox's own, in the SII's formats."""

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dte.sandbox import answers, soap
from dte.sii.client import USER_AGENT, SiiClient, sandbox_endpoints

pytestmark = pytest.mark.django_db


def _soap_answer(path: str, body: bytes) -> bytes:
    call = soap.parse_call(body)
    service = path.rsplit("/", 1)[-1].removesuffix(".jws")
    value = {
        "getSeed": lambda: answers.seed_ok("000000000042"),
        "getToken": lambda: answers.token_ok("TOKENTOKEN123"),
        "getEstUp": lambda: answers.estup_in_progress(1234567890, "SOK"),
        "getEstDte": lambda: answers.estdte("DOK"),
    }[call.operation]()
    return soap.response(service, call.operation, value)


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]] = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.seen.append(("GET", self.path, self.headers.get("User-Agent", "")))
        if "semilla" in self.path:
            return self._reply(answers.seed_ok("000000000043").encode(), "application/xml")
        if "/estado" in self.path:
            payload = {"estado": "DOK", "descripcion": "ok"}
        else:
            payload = {"estado": "SOK", "estadistica": [], "detalle_rep_rech": []}
        return self._reply(json.dumps(payload).encode(), "application/json")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.seen.append(("POST", self.path, self.headers.get("User-Agent", "")))
        if "/DTEWS/" in self.path:
            return self._reply(_soap_answer(self.path, body), "text/xml")
        if self.path.endswith("DTEUpload"):
            answer = answers.recepcion(
                rut_sender="1-9", rut_company="1-9", file_name="f", status=0, track_id=123
            )
            return self._reply(answer.encode(), "text/xml")
        if self.path.endswith("boleta.electronica.token"):
            return self._reply(answers.token_ok("BOLETATOKEN1").encode(), "application/xml")
        payload = {"trackid": 123456789012345, "estado": "REC", "fecha_recepcion": "x"}
        return self._reply(json.dumps(payload).encode(), "application/json")


@pytest.fixture
def stand_in():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/_sii"
    server.shutdown()
    server.server_close()


def test_every_kind_of_call_carries_the_browser_user_agent(stand_in):
    client = SiiClient(sandbox_endpoints(stand_in), timeout=5)
    today = date(2026, 12, 1)
    # SOAP first: zeep builds its transports here (the bug: it renamed the session's agent).
    client.get_seed()
    client.get_token("<getToken/>")
    client.get_est_up(rut_company="76086428-5", track_id="1234567890", token="T")
    client.get_est_dte(
        rut_consultante="12345678-5",
        rut_company="76086428-5",
        rut_receptor="96790240-3",
        tipo=33,
        folio=1,
        fecha=today,
        monto=1190,
        token="T",
    )
    envelope = b'<?xml version="1.0" encoding="ISO-8859-1"?><EnvioDTE/>'
    client.upload(
        envelope, rut_sender="12345678-5", rut_company="76086428-5", filename="e.xml", token="T"
    )
    client.boleta_seed()
    client.boleta_token("<getToken/>")
    client.boleta_upload(
        envelope, rut_sender="12345678-5", rut_company="76086428-5", filename="b.xml", token="T"
    )
    client.boleta_status(rut_company="76086428-5", track_id="123456789012345", token="T")
    client.boleta_document_status(
        rut_company="76086428-5",
        tipo=39,
        folio=1,
        rut_receptor="66666666-6",
        monto=1000,
        fecha=today,
        token="T",
    )
    paths = [path for _, path, _ in Recorder.seen]
    assert len(paths) == 10, paths
    assert {agent for _, _, agent in Recorder.seen} == {USER_AGENT}, Recorder.seen
    # ... and SOAP again after the REST calls, through the transports zeep already built.
    client.get_seed()
    assert Recorder.seen[-1][2] == USER_AGENT
