import pytest

from tests.ai.stub import MessagesStub


@pytest.fixture(autouse=True)
def _no_real_anthropic(monkeypatch):
    """Whatever a test forgets to configure, the SDK must not find a key or reach the internet:
    no key in the environment, a dead local base URL, no proxies."""
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_PROFILE",
        "ANTHROPIC_CUSTOM_HEADERS",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def ai_stub():
    """A local Messages API (`tests/ai/stub.py`); script it, point `AiConfig.base_url` at `.url`."""
    with MessagesStub() as stub:
        yield stub
    assert stub.unscripted == 0, f"the stub got {stub.unscripted} request(s) it had no reply for"
