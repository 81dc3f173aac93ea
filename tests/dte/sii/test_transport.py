"""The SII client opens one connection per request: a pooled socket the server already closed
would fail the next call at random under load."""

import requests

from dte.sii.client import ENVIRONMENTS, SiiClient, one_request_per_connection


def test_no_connection_is_kept_between_requests(live_server):
    session = one_request_per_connection(requests.Session())
    for _ in range(3):
        assert session.get(f"{live_server.url}/health/live", timeout=5).status_code == 200
        assert not session.get_adapter(live_server.url).poolmanager.pools
    session.close()


def test_the_client_uses_it():
    client = SiiClient(ENVIRONMENTS["production"])
    adapter = client.session.get_adapter("https://palena.sii.cl/")
    assert type(adapter).__name__ == "OneRequestPerConnection"
    assert client.session.headers["Connection"] == "close"
