"""Locust users by role, against the stack bench/load/run.py starts.

    staff        a clerk in the web UI: logs in through the form (CSRF), then the dashboard, the
                 sales documents list, a search, a document's page and its PDF, with think time
    integrator   an ERP posting facturas through the API: create a factura 33 draft, issue it
    batch        an ERP issuing its facturas together: LOAD_BATCH_SIZE drafts, then one request to
                 the batch endpoint (…/sales-documents/issue-batch/)
    accountant   logs in, computes the month's F29 through the API, reads it (API and page)
    reader       an integration reading through the API: list, detail, search, the F29, /ready

Request names are "<role>: <task>", so the stats say who did what. Everything the users need
(company, ids, logins, tokens) comes from the seed (LOAD_FIXTURES, a JSON file). The run's
shape and mix come from the runner through the environment:

    LOAD_STAGES  JSON [[until_s, users, spawn_rate], ...]: the user count over time
    LOAD_MIX     JSON {"StaffUser": {"weight": 3} | {"fixed": 1}, ...}
    LOAD_ISSUE_PACE  seconds per create+issue of each integrator (0: back to back)
    LOAD_BATCH_SIZE  drafts per batch request (default 20)
"""

import itertools
import json
import os
import random
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from locust import FastHttpUser, LoadTestShape, between, constant, constant_pacing, task

FIXTURES = json.loads(Path(os.environ["LOAD_FIXTURES"]).read_text())
STAGES = json.loads(os.environ.get("LOAD_STAGES", "[[30, 5, 5]]"))
MIX = json.loads(os.environ.get("LOAD_MIX", "{}"))
ISSUE_PACE = float(os.environ.get("LOAD_ISSUE_PACE", "0"))
BATCH_SIZE = int(os.environ.get("LOAD_BATCH_SIZE", "20"))

COMPANY = FIXTURES["company"]
API = f"/api/v1/companies/{COMPANY}"
ISSUED = FIXTURES["issued"]
PERIODS = FIXTURES["periods"]
SANTIAGO = ZoneInfo("America/Santiago")  # the app's TIME_ZONE: its "today"
CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')

_next_account = {kind: itertools.count() for kind in FIXTURES["accounts"]}


def account(kind: str) -> dict:
    rows = FIXTURES["accounts"][kind]
    return rows[next(_next_account[kind]) % len(rows)]


def _expect(response, status: int, what: str) -> bool:
    if response.status_code != status:
        body = (response.text or "")[:160].replace("\n", " ")
        response.failure(f"{what}: HTTP {response.status_code} (want {status}) {body}")
        return False
    return True


class _Base(FastHttpUser):
    abstract = True
    kind = ""
    account: dict[str, str]
    headers: dict[str, str]
    # Each simulated user keeps its connection, as a browser or an HTTP client library does.
    connection_timeout = 30.0
    network_timeout = 60.0

    def token_headers(self) -> dict:
        return {"Authorization": f"Token {self.account['token']}"}

    def web_login(self) -> None:
        """GET the form for its CSRF token and cookie, POST it, expect the redirect home."""
        with self.client.get(
            "/login/", name=f"{self.kind}: login form", catch_response=True
        ) as response:
            found = CSRF_INPUT.search(response.content or b"")
            if not _expect(response, 200, "login form") or not found:
                if found is None and response.status_code == 200:
                    response.failure("login form without csrfmiddlewaretoken")
                return
            token = found.group(1).decode()
        with self.client.post(
            "/login/",
            data={
                "username": self.account["username"],
                "password": self.account["password"],
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{self.host}/login/"},
            name=f"{self.kind}: login",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if _expect(response, 302, "login") and "/login" in response.headers.get("Location", ""):
                response.failure("login refused: redirected to the login page again")


def _apply_mix(cls: type[_Base]) -> type[_Base]:
    spec = MIX.get(cls.__name__, {})
    if "fixed" in spec:
        cls.fixed_count = int(spec["fixed"])
    if "weight" in spec:
        cls.weight = int(spec["weight"])
    return cls


@_apply_mix
class StaffUser(_Base):
    kind = "staff"
    wait_time = between(1, 5)

    def on_start(self) -> None:
        self.account = account("staff")
        self.web_login()

    def _get(self, path: str, name: str, **kwargs) -> None:
        # No redirects: a lost session (302 to the login page) counts as a failure.
        with self.client.get(
            path, name=f"staff: {name}", allow_redirects=False, catch_response=True, **kwargs
        ) as response:
            _expect(response, 200, name)

    @task(2)
    def dashboard(self) -> None:
        self._get("/", "dashboard")

    @task(3)
    def documents(self) -> None:
        self._get("/documentos/", "documents list")

    @task(2)
    def search(self) -> None:
        term = random.choice(FIXTURES["search"])
        self._get("/documentos/", "documents search", params={"q": term})

    @task(3)
    def detail(self) -> None:
        self._get(f"/documentos/{random.choice(ISSUED)['document']}/", "document page")

    @task(1)
    def pdf(self) -> None:
        self._get(f"/dte/{random.choice(ISSUED)['dte']}/pdf/", "document PDF")


def _integrator_wait():
    return constant_pacing(ISSUE_PACE) if ISSUE_PACE > 0 else constant(0)


def factura_payload() -> dict:
    """A factura 33 of two lines: a catalogue product and a free line with a discount."""
    n = random.randrange(1000)
    products = FIXTURES["products"]
    return {
        "tipo_dte": 33,
        "fecha_emision": datetime.now(SANTIAGO).date().isoformat(),
        "partner": FIXTURES["partners"][n % len(FIXTURES["partners"])],
        "forma_pago": 1,
        "lines": [
            {"product": products[n % len(products)], "quantity": str(n % 9 + 1)},
            {
                "name": "Servicio de soporte mensual",
                "quantity": "1",
                "unit_price": str(10000 + n),
                "discount_pct": "5",
            },
        ],
        "references": [],
    }


def create_draft(user: "_Base", name: str) -> int | None:
    with user.client.post(
        f"{API}/sales-documents/",
        json=factura_payload(),
        headers=user.headers,
        name=name,
        catch_response=True,
    ) as response:
        if not _expect(response, 201, "create"):
            return None
        return int(response.json()["id"])


@_apply_mix
class IntegratorUser(_Base):
    kind = "integrator"
    wait_time = _integrator_wait()

    def on_start(self) -> None:
        self.account = account("integrator")
        self.headers = self.token_headers()

    @task
    def create_and_issue(self) -> None:
        document = create_draft(self, "integrator: create factura 33")
        if document is None:
            return
        with self.client.post(
            f"{API}/sales-documents/{document}/issue/",
            headers=self.headers,
            name="integrator: issue",
            catch_response=True,
        ) as response:
            if _expect(response, 201, "issue") and not response.json().get("folio"):
                response.failure("issue answered without a folio")


@_apply_mix
class BatchUser(_Base):
    """Drafts one by one, then all of them in one request to the batch endpoint, back to back."""

    kind = "batch"
    wait_time = constant(0)

    def on_start(self) -> None:
        self.account = account("integrator")
        self.headers = self.token_headers()

    @task
    def create_and_issue_batch(self) -> None:
        ids = []
        for _ in range(BATCH_SIZE):
            document = create_draft(self, "batch: create factura 33")
            if document is None:
                return
            ids.append(document)
        with self.client.post(
            f"{API}/sales-documents/issue-batch/",
            json={"documents": ids},
            headers=self.headers,
            name=f"batch: issue {BATCH_SIZE}",
            catch_response=True,
        ) as response:
            if not _expect(response, 200, "issue batch"):
                return
            body = response.json()
            if body.get("issued") != len(ids):
                refused = [r for r in body.get("results", []) if not r.get("issued")]
                first = refused[0].get("error") if refused else body
                response.failure(f"issue batch: {len(refused)} of {len(ids)} refused: {first}")


@_apply_mix
class AccountantUser(_Base):
    kind = "accountant"
    wait_time = between(3, 8)

    def on_start(self) -> None:
        self.account = account("accountant")
        self.headers = self.token_headers()
        self.web_login()

    @task(1)
    def compute(self) -> None:
        period = PERIODS[-1]
        with self.client.post(
            f"{API}/f29/{period}/compute/",
            json={},
            headers=self.headers,
            name="accountant: compute F29",
            catch_response=True,
        ) as response:
            _expect(response, 200, "compute F29")

    @task(2)
    def view_api(self) -> None:
        with self.client.get(
            f"{API}/f29/{random.choice(PERIODS)}/",
            headers=self.headers,
            name="accountant: F29 (API)",
            catch_response=True,
        ) as response:
            _expect(response, 200, "F29")

    @task(2)
    def view_page(self) -> None:
        with self.client.get(
            f"/f29/{random.choice(PERIODS)}/",
            name="accountant: F29 page",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            _expect(response, 200, "F29 page")


@_apply_mix
class ReaderUser(_Base):
    kind = "reader"
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.account = account("reader")
        self.headers = self.token_headers()

    def _get(self, path: str, name: str, **kwargs) -> None:
        with self.client.get(
            path, headers=self.headers, name=f"reader: {name}", catch_response=True, **kwargs
        ) as response:
            _expect(response, 200, name)

    @task(3)
    def list(self) -> None:
        self._get(f"{API}/sales-documents/", "list documents")

    @task(3)
    def detail(self) -> None:
        self._get(f"{API}/sales-documents/{random.choice(ISSUED)['document']}/", "document")

    @task(2)
    def search(self) -> None:
        term = random.choice(FIXTURES["search"])
        self._get(f"{API}/sales-documents/", "search documents", params={"search": term})

    @task(1)
    def f29(self) -> None:
        self._get(f"{API}/f29/{random.choice(PERIODS)}/", "F29")

    @task(1)
    def ready(self) -> None:
        with self.client.get("/health/ready", name="reader: /ready", catch_response=True) as r:
            _expect(r, 200, "ready")


class StagesShape(LoadTestShape):
    """The user count over time from LOAD_STAGES; the run ends after the last stage."""

    def tick(self):
        elapsed = self.get_run_time()
        for until, users, spawn_rate in STAGES:
            if elapsed < until:
                return int(users), float(spawn_rate)
        return None
