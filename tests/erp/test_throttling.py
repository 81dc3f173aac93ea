"""Throttling: the login lockout (django-axes) on the web login and /admin/login/, and the API
throttles per user and per anonymous client address (DRF), each answering 429."""

import runpy
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessLog
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "clave-secreta-1"  # tests.factories.UserFactory
LOGINS = {"web": "/login/", "admin": "/admin/login/"}


@pytest.fixture
def lockout(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


def post_login(client, url, username, password, ip="203.0.113.7", **extra):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def assert_logged_in(response):
    assert response.status_code == 302, response.content.decode()[:2000]
    assert "_auth_user_id" in response.wsgi_request.session


def assert_locked_out(response):
    assert response.status_code == 429
    page = response.content.decode()
    assert "Demasiados intentos fallidos" in page
    assert "Podrá intentarlo de nuevo a las" in page and "(en 15 minutos)" in page
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in response.wsgi_request.session


def shift_attempts_back(delta):
    """As if `delta` had passed since the failures (the cool-off counts from the last one)."""
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= delta
        attempt.save(update_fields=["attempt_time"])


@pytest.mark.parametrize("which", sorted(LOGINS))
def test_five_wrong_passwords_lock_out_even_the_right_one(client, lockout, which):
    url, user = LOGINS[which], UserFactory()
    for _ in range(4):
        response = post_login(client, url, user.username, "incorrecta")
        assert response.status_code == 200  # the form again, with its error
    assert_locked_out(post_login(client, url, user.username, "incorrecta"))
    assert_locked_out(post_login(client, url, user.username, PASSWORD))


@pytest.mark.parametrize("which", sorted(LOGINS))
def test_after_the_cool_off_the_right_password_works(client, lockout, which):
    url, user = LOGINS[which], UserFactory()
    for _ in range(5):
        post_login(client, url, user.username, "incorrecta")
    # A try during the lockout does not extend it.
    shift_attempts_back(timedelta(minutes=10))
    early = post_login(client, url, user.username, PASSWORD)
    assert early.status_code == 429
    assert 4 * 60 < int(early["Retry-After"]) <= 5 * 60
    assert "(en 5 minutos)" in early.content.decode()
    shift_attempts_back(timedelta(minutes=5, seconds=1))
    assert_logged_in(post_login(client, url, user.username, PASSWORD))
    assert not AccessAttempt.objects.exists()  # reset on success


def test_a_success_resets_the_count(client, lockout):
    user = UserFactory()
    for _ in range(4):
        post_login(client, "/login/", user.username, "incorrecta")
    assert_logged_in(post_login(client, "/login/", user.username, PASSWORD))
    client.logout()
    for _ in range(4):
        assert post_login(client, "/login/", user.username, "incorrecta").status_code == 200
    assert_logged_in(post_login(client, "/login/", user.username, PASSWORD))
    client.logout()
    for _ in range(4):
        assert post_login(client, "/login/", user.username, "incorrecta").status_code == 200
    assert_locked_out(post_login(client, "/login/", user.username, "incorrecta"))


def test_the_lockout_is_per_username_and_address(client, lockout):
    """Someone guessing a user's password does not lock the user out from their own address,
    nor other users out of the guesser's address."""
    user, other = UserFactory(), UserFactory()
    for _ in range(5):
        post_login(client, "/login/", user.username, "incorrecta", ip="198.51.100.66")
    assert (
        post_login(client, "/login/", user.username, PASSWORD, ip="198.51.100.66").status_code
        == 429
    )
    assert_logged_in(post_login(client, "/login/", other.username, PASSWORD, ip="198.51.100.66"))
    client.logout()
    assert_logged_in(post_login(client, "/login/", user.username, PASSWORD, ip="203.0.113.7"))


def test_a_forged_x_forwarded_for_does_not_escape_the_lockout(client, lockout):
    """Without a trusted proxy (TRUSTED_PROXY_COUNT=0) the client's own X-Forwarded-For is
    ignored: a new forged address per try still counts against the real one."""
    user = UserFactory()
    for n in range(5):
        post_login(
            client, "/login/", user.username, "incorrecta", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"
        )
    response = post_login(
        client, "/login/", user.username, PASSWORD, HTTP_X_FORWARDED_FOR="10.0.0.99"
    )
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_client_is_the_address_it_appended(client, lockout):
    lockout.REST_FRAMEWORK = {**lockout.REST_FRAMEWORK, "NUM_PROXIES": 1}
    user = UserFactory()
    proxy = "172.18.0.5"
    for _ in range(5):
        post_login(
            client,
            "/login/",
            user.username,
            "x",
            ip=proxy,
            HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.1",
        )
    assert AccessAttempt.objects.get().ip_address == "198.51.100.1"
    locked = post_login(
        client, "/login/", user.username, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1"
    )
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out.
    other = post_login(
        client, "/login/", user.username, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.2"
    )
    assert_logged_in(other)


def test_the_test_client_login_works_and_is_watched_too(client, lockout):
    """tests/conftest.py gives the test client's login() the request axes needs."""
    user = UserFactory()
    assert client.login(username=user.username, password=PASSWORD)
    assert AccessLog.objects.filter(username=user.username).count() == 1
    for _ in range(5):
        assert not client.login(username=user.username, password="incorrecta")
    assert not client.login(username=user.username, password=PASSWORD)


# ---------------------------------------------------------------------------------- the API


@pytest.fixture
def api_throttles(settings):
    """Low limits, and counters that start at zero: the cache (Redis in CI) outlives a test, and
    user ids come back after a rollback."""
    settings.API_THROTTLE_USER = "5/min"
    settings.API_THROTTLE_ANON = "3/min"
    used = []

    def fresh(key):
        cache.delete(key)
        used.append(key)

    yield fresh
    cache.delete_many(used)


def assert_throttled(response):
    assert response.status_code == 429, response.content[:500]
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == "throttled" and body["fields"] == {}
    wait = int(response["Retry-After"])
    assert 0 < wait <= 60
    assert body["message"] == (
        f"Demasiadas solicitudes: espere {wait} segundo{'' if wait == 1 else 's'} "
        "antes de volver a intentarlo."
    )


def test_the_api_throttles_each_user(api_throttles, api_for, clerk, viewer, company):
    for user in (clerk, viewer):
        api_throttles(f"throttle_user_{user.pk}")
    api_throttles("throttle_anon_203.0.113.9")
    api = api_for(clerk)
    for _ in range(5):
        assert api.get("/api/v1/companies/", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert_throttled(api.get("/api/v1/companies/", REMOTE_ADDR="203.0.113.9"))
    assert_throttled(api.get("/api/v1/companies/76086428-5/partners/", REMOTE_ADDR="203.0.113.9"))
    # Per user, not per address: another user from the same address goes on.
    other = api_for(viewer)
    assert other.get("/api/v1/companies/", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_the_api_throttles_anonymous_clients_by_address(api_throttles, company):
    for address in ("203.0.113.9", "203.0.113.10"):
        api_throttles(f"throttle_anon_{address}")
        api_throttles(f"throttle_user_{address}")
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        # Refused (no credentials), yet counted: an anonymous flood gets its 429 too.
        assert client.get("/api/v1/companies/").status_code in (401, 403)
    assert_throttled(client.get("/api/v1/companies/"))
    assert_throttled(client.get("/api/schema/", {"format": "json"}))  # open to anonymous clients
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)  # a bad token is anonymous too
    assert_throttled(client.get("/api/v1/companies/"))
    # Another address is not affected.
    other = APIClient(REMOTE_ADDR="203.0.113.10")
    assert other.get("/api/v1/companies/").status_code in (401, 403)


def test_the_rates_are_read_on_each_request_and_empty_is_off(
    api_throttles, settings, api_for, clerk, company
):
    api_throttles(f"throttle_user_{clerk.pk}")
    api = api_for(clerk)
    settings.API_THROTTLE_USER = "2/min"
    assert [api.get("/api/v1/companies/").status_code for _ in range(3)] == [200, 200, 429]
    settings.API_THROTTLE_USER = None  # API_THROTTLE_USER= (empty) in the environment
    assert [api.get("/api/v1/companies/").status_code for _ in range(3)] == [200, 200, 200]


def test_the_limits_come_from_the_environment(monkeypatch):
    settings_file = str(Path(__file__).resolve().parents[2] / "ops" / "settings.py")
    for name in (
        "API_THROTTLE_USER",
        "API_THROTTLE_ANON",
        "LOGIN_FAILURE_LIMIT",
        "LOGIN_LOCKOUT_MINUTES",
        "TRUSTED_PROXY_COUNT",
    ):
        monkeypatch.delenv(name, raising=False)
    defaults = runpy.run_path(settings_file)
    assert (defaults["API_THROTTLE_USER"], defaults["API_THROTTLE_ANON"]) == ("600/min", "60/min")
    assert defaults["AXES_FAILURE_LIMIT"] == 5
    assert defaults["AXES_COOLOFF_TIME"] == timedelta(minutes=15)
    assert defaults["REST_FRAMEWORK"]["NUM_PROXIES"] == 0
    monkeypatch.setenv("API_THROTTLE_USER", "1200/hour")
    monkeypatch.setenv("API_THROTTLE_ANON", "")
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
    monkeypatch.setenv("LOGIN_LOCKOUT_MINUTES", "30")
    changed = runpy.run_path(settings_file)
    assert (changed["API_THROTTLE_USER"], changed["API_THROTTLE_ANON"]) == ("1200/hour", None)
    assert changed["REST_FRAMEWORK"]["NUM_PROXIES"] == 1
    assert changed["AXES_COOLOFF_TIME"] == timedelta(minutes=30)
    monkeypatch.setenv("API_THROTTLE_ANON", "muchas")
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_ANON"):
        runpy.run_path(settings_file)
