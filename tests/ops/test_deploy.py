"""deploy/bin/deploy and deploy/bin/rollback (over deploy/release.py) with the stack's side
effects replaced: the order of the steps, the weights, the image tags in the env file, the
release record, the drain, and the failures that must move no traffic.
tests/ops/test_traefik_app.py runs the smoke test and the drain against real Traefik and
gunicorn."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.app_colours import load_deploy_module as load_script

ROOT = Path(__file__).resolve().parents[2]
ENV_TEXT = """# Interpolation of compose.yaml
POSTGRES_PASSWORD=secret
# Image repository and the tag of each colour
APP_IMAGE=facturacion
BLUE_TAG=v1
GREEN_TAG=v0
BEAT_TAG=v1
"""


@pytest.fixture
def deploy_module():
    return load_script("deploy")


@pytest.fixture
def rollback_module():
    return load_script("rollback")


@pytest.fixture
def paths(tmp_path):
    env = tmp_path / "env"
    env.mkdir()
    (env / "compose.env").write_text(ENV_TEXT)
    dynamic = tmp_path / "dynamic"
    dynamic.mkdir()
    return {"env_file": env / "compose.env", "record": env / "release.json",
            "weights": dynamic / "weights.yml"}  # fmt: skip


def fake_stack(module, paths, *, metrics=(0.0, 0.1), healthy=True, smoke=None, lag=0):
    """`lag`: how many times Traefik's API still shows the old weights after a write."""
    release = module.release

    class FakeStack(release.Stack):
        def __init__(self):
            super().__init__("docker compose", **paths)
            self.calls, self.written, self.smoked = [], [], []
            self.applied, self._lag = None, 0
            if not self.weights_path.exists():
                release.bluegreen.write_weights_atomically(self.weights_path, 100, 0)

        def compose(self, *args):
            self.calls.append(args)

        def healthy(self, service):
            return healthy if not callable(healthy) else healthy(service)

        def smoke(self, colour):
            self.smoked.append(colour)
            return smoke

        def query(self, promql):
            errors, p95 = metrics if not callable(metrics) else metrics(self)
            return errors if "5.." in promql else p95

        def write_weights(self, blue, green):
            self.written.append((blue, green))
            self._lag = lag
            super().write_weights(blue, green)

        def applied_weights(self):
            if self._lag > 0:
                self._lag -= 1
                return None
            return self.weights()

        def sleep(self, seconds):
            pass

        def env(self) -> dict[str, str]:
            text = self.env_file.read_text()
            return {k: release.env_value(text, k) for k in ("BLUE_TAG", "GREEN_TAG", "BEAT_TAG")}

        def record(self):
            return self.read_record()

    return FakeStack()


# ---------------------------------------------------------------- deploy


def test_a_good_release_moves_all_traffic_step_by_step(deploy_module, paths):
    stack = fake_stack(deploy_module, paths)
    assert deploy_module.main(["v2", "--observe", "30"], stack=stack) == 0
    assert stack.written == [(95, 5), (75, 25), (50, 50), (0, 100)]
    assert stack.calls[0] == ("pull", "web-green", "worker-green")
    assert stack.calls[1][-3:] == ("manage.py", "migrate", "--noinput")
    # The web, smoke-tested, and only then the worker (it takes live tasks at once).
    assert stack.calls[2] == ("up", "-d", "--no-deps", "--no-build", "web-green")
    assert stack.calls[3] == ("up", "-d", "--no-deps", "--no-build", "worker-green")
    assert stack.calls[4] == ("up", "-d", "--no-deps", "beat")
    assert stack.calls[-1] == ("stop", "web-blue", "worker-blue")
    assert stack.smoked == ["green"]
    assert stack.weights() == (0, 100)
    # Every later compose call (by hand, the autoscaler) runs the deployed image on green.
    assert stack.env() == {"BLUE_TAG": "v1", "GREEN_TAG": "v2", "BEAT_TAG": "v2"}
    assert "# Image repository and the tag of each colour" in stack.env_file.read_text()
    record = stack.record()
    assert (record.live.colour, record.live.tag) == ("green", "v2")
    assert (record.previous.colour, record.previous.tag) == ("blue", "v1")


def test_a_breach_rolls_back_and_keeps_the_old_colour(deploy_module, paths):
    def worse_at_25(stack):
        return (0.05, 0.2) if stack.written[-1] == (75, 25) else (0.0, 0.1)

    stack = fake_stack(deploy_module, paths, metrics=worse_at_25)
    assert deploy_module.main(["v2", "--observe", "30"], stack=stack) == 1
    assert stack.written == [(95, 5), (75, 25), (100, 0)]
    # The rejected release's worker stops taking tasks; its web stays up at weight 0.
    assert [call for call in stack.calls if call[0] == "stop"] == [("stop", "worker-green")]
    assert ("up", "-d", "--no-deps", "beat") not in stack.calls
    # green still runs v2 (at weight 0, for a look); the beat and the record stay on v1.
    assert stack.env() == {"BLUE_TAG": "v1", "GREEN_TAG": "v2", "BEAT_TAG": "v1"}
    assert stack.record() is None


def test_no_metrics_is_no_proof_of_health(deploy_module, paths):
    stack = fake_stack(deploy_module, paths, metrics=(None, None))
    assert deploy_module.main(["v2", "--observe", "30"], stack=stack) == 1
    assert stack.weights() == (100, 0)


def test_a_colour_that_never_gets_ready_gets_no_traffic(deploy_module, paths):
    stack = fake_stack(deploy_module, paths, healthy=False)
    assert deploy_module.main(["v2", "--ready-timeout", "20"], stack=stack) == 1
    assert stack.written == [(100, 0)]
    assert stack.smoked == []
    assert ("up", "-d", "--no-deps", "--no-build", "worker-green") not in stack.calls


def test_an_interrupted_deploy_never_leaves_the_traffic_split(deploy_module, paths):
    def interrupted(stack):
        if stack.written[-1] == (75, 25):
            raise KeyboardInterrupt
        return (0.0, 0.1)

    stack = fake_stack(deploy_module, paths, metrics=interrupted)
    with pytest.raises(KeyboardInterrupt):
        deploy_module.main(["v2", "--observe", "30"], stack=stack)
    assert stack.written[-1] == (100, 0) and stack.weights() == (100, 0)


def test_a_failed_smoke_test_moves_nothing(deploy_module, paths, capsys):
    stack = fake_stack(deploy_module, paths, smoke="/health/ready: HTTP 503")
    assert deploy_module.main(["v2"], stack=stack) == 1
    assert stack.written == [(100, 0)]
    assert "smoke test of green through Traefik failed: /health/ready: HTTP 503" in (
        capsys.readouterr().err
    )


def test_deploying_from_green_goes_to_blue(deploy_module, paths):
    stack = fake_stack(deploy_module, paths)
    stack.write_weights(0, 100)
    stack.written.clear()
    assert deploy_module.main(["v3", "--observe", "15"], stack=stack) == 0
    assert stack.written[-1] == (100, 0)
    assert stack.calls[0][-2:] == ("web-blue", "worker-blue")
    assert stack.env()["BLUE_TAG"] == "v3"


def test_the_old_colour_stops_only_once_traefik_applies_weight_0(deploy_module, paths):
    stack = fake_stack(deploy_module, paths, lag=3)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    assert stack.calls[-1] == ("stop", "web-blue", "worker-blue")


def test_a_traefik_that_never_applies_the_weights_stops_nothing(deploy_module, paths, capsys):
    stack = fake_stack(deploy_module, paths, lag=10_000)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 1
    assert not any(call[0] == "stop" for call in stack.calls)
    assert "v2 takes all traffic, but finishing failed" in capsys.readouterr().err


@pytest.mark.parametrize("tag", ["", "v2;rm -rf /", "v2:latest", ".v2", "x" * 200])
def test_a_bad_tag_is_refused_before_anything_runs(deploy_module, paths, tag, capsys):
    stack = fake_stack(deploy_module, paths)
    assert deploy_module.main([tag], stack=stack) == 2
    assert stack.calls == [] and stack.written == []
    assert "not a valid image tag" in capsys.readouterr().err


def test_a_missing_env_file_is_refused(deploy_module, paths):
    stack = fake_stack(deploy_module, paths)
    stack.env_file.unlink()
    assert deploy_module.main(["v2"], stack=stack) == 2
    assert stack.calls == []


def test_one_deploy_at_a_time(deploy_module, paths, capsys):
    stack = fake_stack(deploy_module, paths)
    with deploy_module.release.locked(paths["env_file"].with_name(".release.lock")):
        assert deploy_module.main(["v2"], stack=stack) == 1
    assert stack.calls == [] and stack.written == []
    assert "another deploy or rollback holds" in capsys.readouterr().err


def test_dry_run_prints_every_step_and_changes_nothing(paths):
    deploy_module = load_script("deploy")
    deploy_module.bluegreen.write_weights_atomically(paths["weights"], 100, 0)
    before = {name: path.read_text() for name, path in paths.items() if path.exists()}
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy/bin/deploy"), "v9", "--dry-run", "--observe", "15",
         "--env-file", str(paths["env_file"]), "--weights", str(paths["weights"])],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "+ docker compose --env-file" in out and "up -d --no-deps --no-build web-green" in out
    assert "weights: blue 95 / green 5" in out and "weights: blue 0 / green 100" in out
    assert "tags: GREEN_TAG=v9" in out and "stop web-blue worker-blue" in out
    assert {name: path.read_text() for name, path in paths.items() if path.exists()} == before


# ---------------------------------------------------------------- rollback


def test_rollback_goes_back_to_the_previous_release(deploy_module, rollback_module, paths):
    stack = fake_stack(deploy_module, paths)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    stack.calls.clear()
    stack.written.clear()
    stack.smoked.clear()
    assert rollback_module.main([], stack=stack) == 0
    assert stack.calls[0] == ("up", "-d", "--no-deps", "web-blue", "worker-blue")
    assert stack.smoked == ["blue"]
    assert stack.written == [(100, 0)]
    assert ("up", "-d", "--no-deps", "beat") in stack.calls
    assert stack.calls[-1] == ("stop", "web-green", "worker-green")
    assert stack.env() == {"BLUE_TAG": "v1", "GREEN_TAG": "v2", "BEAT_TAG": "v1"}
    record = stack.record()
    assert (record.live.colour, record.live.tag, record.previous.tag) == ("blue", "v1", "v2")
    # A second rollback goes forward again.
    assert rollback_module.main([], stack=stack) == 0
    assert stack.weights() == (0, 100) and stack.env()["BEAT_TAG"] == "v2"


def test_rollback_after_a_failed_deploy_restores_the_older_tag(rollback_module, paths):
    release = rollback_module.release
    paths["record"].write_text(
        release.Record(release.Release("blue", "v1"), release.Release("green", "v0")).as_json()
    )
    stack = fake_stack(rollback_module, paths)
    stack.set_tags(GREEN_TAG="v2")  # a failed deploy left v2 on green, at weight 0
    assert rollback_module.main([], stack=stack) == 0
    assert stack.env() == {"BLUE_TAG": "v1", "GREEN_TAG": "v0", "BEAT_TAG": "v0"}
    assert stack.weights() == (0, 100)


def test_rollback_without_a_record_changes_nothing(rollback_module, paths, capsys):
    stack = fake_stack(rollback_module, paths)
    assert rollback_module.main([], stack=stack) == 2
    assert stack.calls == [] and stack.written == []
    assert "no previous release" in capsys.readouterr().err


def test_rollback_whose_smoke_test_fails_keeps_traffic_where_it_is(
    deploy_module, rollback_module, paths
):
    stack = fake_stack(deploy_module, paths)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    record = stack.record()
    failing = fake_stack(rollback_module, paths, smoke="/login/: HTTP 500")
    assert rollback_module.main([], stack=failing) == 1
    assert failing.written == [] and failing.weights() == (0, 100)
    assert failing.record() == record
    assert not any(call[0] == "stop" for call in failing.calls)


def test_a_broken_record_is_a_clear_error(rollback_module, paths, capsys):
    paths["record"].write_text('{"live": {"colour": "purple", "tag": "v1"}}')
    assert rollback_module.main([], stack=fake_stack(rollback_module, paths)) == 2
    assert "unreadable release record" in capsys.readouterr().err


# ---------------------------------------------------------------- pure parts


def test_env_with_replaces_in_place_and_appends(deploy_module):
    release = deploy_module.release
    text = "# BLUE_TAG=commented\nBLUE_TAG=v1\nOTHER=x=y\n"
    assert release.env_with(text, {"BLUE_TAG": "v2", "BEAT_TAG": "v2"}) == (
        "# BLUE_TAG=commented\nBLUE_TAG=v2\nOTHER=x=y\nBEAT_TAG=v2\n"
    )
    assert release.env_value(text, "OTHER") == "x=y"
    assert release.env_value(text, "MISSING") is None


# ---------------------------------------------------------------- drain


@pytest.fixture
def drain_module():
    return load_script("drain")


def test_drain_moves_traffic_waits_for_traefik_then_stops(drain_module, paths):
    stack = fake_stack(drain_module, paths, lag=2)
    stack.write_weights(50, 50)
    stack.written.clear()
    assert drain_module.main(["green"], stack=stack) == 0
    assert stack.smoked == ["blue"]
    assert stack.written == [(100, 0)]
    assert stack.calls == [("stop", "web-green", "worker-green")]


def test_drain_refuses_when_the_other_colour_cannot_take_the_traffic(drain_module, paths, capsys):
    unhealthy = fake_stack(drain_module, paths, healthy=lambda service: service != "web-blue")
    assert drain_module.main(["green"], stack=unhealthy) == 1
    assert "web-blue is not healthy" in capsys.readouterr().err
    failing = fake_stack(drain_module, paths, smoke="/login/: HTTP 502")
    assert drain_module.main(["green"], stack=failing) == 1
    for stack in (unhealthy, failing):
        assert stack.written == [] and stack.calls == []


def test_drain_keep_running_only_sets_the_weight(drain_module, paths):
    stack = fake_stack(drain_module, paths)
    assert drain_module.main(["blue", "--keep-running"], stack=stack) == 0
    assert stack.written == [(0, 100)] and stack.calls == []


def test_rollback_refuses_when_the_weights_disagree_with_the_record(
    deploy_module, rollback_module, paths, capsys
):
    stack = fake_stack(deploy_module, paths)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    stack.write_weights(100, 0)  # switched back by hand: blue serves, the record says green
    stack.calls.clear()
    assert rollback_module.main([], stack=stack) == 2
    assert stack.calls == [] and stack.weights() == (100, 0)
    assert "the weights give blue the traffic but the record says green" in capsys.readouterr().err
