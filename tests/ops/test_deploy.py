"""deploy/bin/deploy with its side effects replaced: the order of the steps, the weights it
writes, and the rollback when the new colour breaches the gates or never gets ready."""

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deploy_module(tmp_path, monkeypatch):
    loader = importlib.machinery.SourceFileLoader("deploy_cli", str(ROOT / "deploy/bin/deploy"))
    spec = importlib.util.spec_from_loader("deploy_cli", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    weights = tmp_path / "weights.yml"
    weights.write_text(module.bluegreen.weights_file(100, 0))
    monkeypatch.setattr(module, "WEIGHTS", weights)
    return module


def fake_stack(module, *, metrics=(0.0, 0.1), healthy=True, smoke=True):
    class FakeStack(module.Stack):
        def __init__(self):
            super().__init__("docker compose", "http://prometheus", "http://traefik")
            self.calls, self.weights = [], []

        def compose(self, *args, env=None):
            self.calls.append((args, env))

        def healthy(self, service):
            return healthy if not callable(healthy) else healthy(service)

        def smoke(self):
            return smoke

        def query(self, promql):
            errors, p95 = metrics if not callable(metrics) else metrics(self)
            return errors if "5.." in promql else p95

        def write_weights(self, blue, green):
            self.weights.append((blue, green))
            module.bluegreen.write_weights_atomically(module.WEIGHTS, blue, green)

        def sleep(self, seconds):
            pass

    return FakeStack()


def test_a_good_release_moves_all_traffic_step_by_step(deploy_module):
    stack = fake_stack(deploy_module)
    assert deploy_module.main(["v2", "--observe", "30"], stack=stack) == 0
    assert stack.weights == [(95, 5), (75, 25), (50, 50), (0, 100)]
    up, migrate, stop = stack.calls[0], stack.calls[1], stack.calls[-1]
    assert up == (("up", "-d", "--no-deps", "web-green", "worker-green"), {"GREEN_TAG": "v2"})
    assert migrate[0][-3:] == ("manage.py", "migrate", "--noinput")
    assert stop[0] == ("stop", "web-blue", "worker-blue")
    text = deploy_module.WEIGHTS.read_text()
    assert deploy_module.bluegreen.parse_weights(text) == (0, 100)


def test_a_breach_rolls_back_and_keeps_the_old_colour(deploy_module):
    def worse_at_25(stack):
        return (0.05, 0.2) if stack.weights[-1] == (75, 25) else (0.0, 0.1)

    stack = fake_stack(deploy_module, metrics=worse_at_25)
    assert deploy_module.main(["v2", "--observe", "30"], stack=stack) == 1
    assert stack.weights == [(95, 5), (75, 25), (100, 0)]
    assert not any(call[0][0] == "stop" for call in stack.calls)


def test_no_metrics_is_no_proof_of_health(deploy_module):
    stack = fake_stack(deploy_module, metrics=(None, None))
    assert deploy_module.main(["v2", "--observe", "30"], stack=stack) == 1
    assert stack.weights[-1] == (100, 0)


def test_a_colour_that_never_gets_ready_gets_no_traffic(deploy_module):
    stack = fake_stack(deploy_module, healthy=False)
    assert deploy_module.main(["v2", "--ready-timeout", "20"], stack=stack) == 1
    assert stack.weights == [(100, 0)]


def test_a_failed_smoke_test_moves_nothing(deploy_module):
    stack = fake_stack(deploy_module, smoke=False)
    assert deploy_module.main(["v2"], stack=stack) == 1
    assert stack.weights == [(100, 0)]


def test_deploying_from_green_goes_to_blue(deploy_module):
    deploy_module.WEIGHTS.write_text(deploy_module.bluegreen.weights_file(0, 100))
    stack = fake_stack(deploy_module)
    assert deploy_module.main(["v3", "--observe", "15"], stack=stack) == 0
    assert stack.weights[-1] == (100, 0)
    assert stack.calls[0][1] == {"BLUE_TAG": "v3"}
