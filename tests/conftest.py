"""Shared fixtures, and the rule for tests that need a real service: marked tests skip when the
service is not configured, and fail instead when REQUIRE_SERVICES=1 (CI)."""

import os
import shutil

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from erp.models import Role
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

# Signing material (CAFs, certificate, sandbox key) for the dte tests and the browser test;
# a private Dovecot for the exchange mailbox tests (`imap` marker).
pytest_plugins = ["tests.dte.fixtures", "tests.dte.receiving_material", "tests.imapserver"]


def _postgres() -> str | None:
    engine = settings.DATABASES["default"]["ENGINE"]
    return None if "postgresql" in engine else "DATABASE_URL does not point to PostgreSQL"


def _redis() -> str | None:
    if not settings.REDIS_URL:
        return "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at REDIS_URL does not answer: {exc}"
    return None


def _broker() -> str | None:
    if not settings.CELERY_BROKER_URL:
        return "CELERY_BROKER_URL is not set"
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu raises the transport's own errors
        return f"broker at CELERY_BROKER_URL does not answer: {exc}"
    return None


def _browser() -> str | None:
    return None if shutil.which("chromium") else "chromium is not installed"


def _poppler() -> str | None:
    return None if shutil.which("pdftoppm") else "pdftoppm (poppler-utils) is not installed"


def _imap() -> str | None:
    from tests.imapserver import dovecot_problem

    return dovecot_problem()


SERVICE_CHECKS = {
    "postgres": _postgres,
    "redis": _redis,
    "broker": _broker,
    "browser": _browser,
    "poppler": _poppler,
    "imap": _imap,
}


def pytest_configure(config):
    # Threads (the live server, the race tests) must not keep connections past their request,
    # or the test database cannot be dropped at the end of the session.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


def pytest_runtest_setup(item):
    for marker, check in SERVICE_CHECKS.items():
        if item.get_closest_marker(marker) is None:
            continue
        problem = check()
        if problem is None:
            continue
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {marker} is unavailable: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file in this session's temporary directory, run as the
    embedded default runs it (WAL, immediate transactions, busy timeout), not Django's in-memory
    database: that one is in shared-cache mode, where a second connection (a background thread:
    in-process sending, a review; a live server) meets table locks that ignore the busy timeout
    ("database table is locked") and, at times, a database it cannot see."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture
def company(db):
    return CompanyFactory(rut="76086428-5", razon_social="Empresa Demo SpA")


@pytest.fixture
def other_company(db):
    return CompanyFactory(rut="77879240-0", razon_social="Otra Empresa Ltda.")


def _member(company, role):
    user = UserFactory()
    MembershipFactory(user=user, company=company, role=role)
    return user


@pytest.fixture
def admin_user(company):
    return _member(company, Role.ADMIN)


@pytest.fixture
def clerk(company):
    return _member(company, Role.CLERK)


@pytest.fixture
def viewer(company):
    return _member(company, Role.VIEWER)


@pytest.fixture
def outsider(other_company):
    """A clerk of another company: must never see or touch `company`'s data."""
    return _member(other_company, Role.ADMIN)


def _api_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(clerk):
    return _api_client(clerk)


@pytest.fixture
def api_for():
    return _api_client


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Issuing does not reach out to an SII unless a test asks for it (tests/dte/sii/).
    settings.SII_AUTO_SEND = False
    # Each issue makes its own envelope at once, as most tests expect of one document;
    # tests/dte/sii/test_envelope_window.py covers the shared envelopes of the window.
    settings.SII_ENVELOPE_WINDOW = 0
    # Nor reviews with Claude: never the internet, whatever the environment holds (tests/ai/
    # point the SDK at a local stub), and no review after each issue unless a test asks.
    settings.ANTHROPIC_API_KEY = ""
    settings.ANTHROPIC_BASE_URL = None
    settings.AI_REVIEW_ON_ISSUE = False
    # /metrics as on a laptop (no token), whatever the database; tests/ops/test_exposure.py and
    # test_metrics.py check the token and the closed default.
    settings.METRICS_TOKEN = ""
    settings.METRICS_OPEN_WITHOUT_TOKEN = True
    # The suite makes thousands of API calls: throttles far above that (tests/erp/
    # test_throttling.py lowers them). The login lockout (django-axes) stays on everywhere.
    settings.API_THROTTLE_USER = "1000000/min"
    settings.API_THROTTLE_ANON = "1000000/min"


@pytest.fixture(autouse=True)
def _login_with_a_request(monkeypatch):
    """django-axes watches every authenticate() and needs its request; the test client's login()
    passes none, so it gets an empty one (axes' documented way for the test client)."""
    from django.http import HttpRequest
    from django.test.client import ClientMixin

    login = ClientMixin.login

    def login_with_request(self, **credentials):
        credentials.setdefault("request", HttpRequest())
        return login(self, **credentials)

    monkeypatch.setattr(ClientMixin, "login", login_with_request)


@pytest.fixture(autouse=True)
def _background_inline(monkeypatch):
    """Work started in the background (tasks without a broker) runs in the thread that started
    it, after its commit: the in-memory SQLite test database cannot take concurrent writers.
    Tests of the background itself (tests/erp/test_background.py) turn it off."""
    from erp import background

    monkeypatch.setattr(background, "INLINE", True)
    yield
    background.wait_for_background(timeout=60)


@pytest.fixture
def eager_tasks(settings):
    """Celery tasks run in this process, as on a laptop without a broker, even when the suite has
    a broker configured (CI); tests/dte/sii/test_worker.py covers the real worker."""
    from ops.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.task_always_eager = previous
