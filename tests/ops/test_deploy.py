"""deploy/bin/deploy, rollback and drain (over deploy/release.py) with the stack's side
effects replaced: the order of the steps, the weights, the image tags in the env file, the
release record, the drain, the failures that must move no traffic, and every worker service of
a colour (read from compose.yaml with PyYAML here) pulled, started and stopped with it.
tests/ops/test_traefik_app.py runs the smoke test and the drain against real Traefik and
gunicorn."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
COMPOSE_SERVICES = list(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"])


def workers_of(colour: str, services: list[str] = COMPOSE_SERVICES) -> list[str]:
    """A colour's Celery worker services, found here apart from deploy/release.py's reading."""
    return [name for name in services if re.fullmatch(rf"worker-{colour}(-[\w-]+)?", name)]


WORKERS = {colour: workers_of(colour) for colour in ("blue", "green")}


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


def fake_stack(
    module, paths, *, metrics=(0.0, 0.1), healthy=True, smoke=None, lag=0, compose_file=None
):
    """`lag`: how many times Traefik's API still shows the old weights after a write;
    `compose_file`: another compose.yaml than the repository's."""
    release = module.release
    files = {"compose_file": compose_file} if compose_file else {}

    class FakeStack(release.Stack):
        def __init__(self):
            super().__init__("docker compose", **paths, **files)
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
    assert stack.calls[0] == ("pull", "web-green", "worker-green", "worker-green-aux",
                              "worker-green-bulk")  # fmt: skip
    assert stack.calls[1][-3:] == ("manage.py", "migrate", "--noinput")
    # The web, smoke-tested, and only then the workers (they take live tasks at once).
    assert stack.calls[2] == ("up", "-d", "--no-deps", "--no-build", "web-green")
    assert stack.calls[3] == ("up", "-d", "--no-deps", "--no-build", *WORKERS["green"])
    assert stack.calls[4] == ("up", "-d", "--no-deps", "beat")
    assert stack.calls[-1] == ("stop", "web-blue", "worker-blue", "worker-blue-aux",
                               "worker-blue-bulk")  # fmt: skip
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
    # The rejected release's workers stop taking tasks; its web stays up at weight 0.
    assert [call for call in stack.calls if call[0] == "stop"] == [("stop", *WORKERS["green"])]
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
    assert not any(call[0] == "up" and "worker-green" in call for call in stack.calls)


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
    assert stack.calls[0] == ("pull", "web-blue", *WORKERS["blue"])
    assert stack.env()["BLUE_TAG"] == "v3"


def test_the_old_colour_stops_only_once_traefik_applies_weight_0(deploy_module, paths):
    stack = fake_stack(deploy_module, paths, lag=3)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    assert stack.calls[-1] == ("stop", "web-blue", *WORKERS["blue"])


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
    assert "tags: GREEN_TAG=v9" in out
    assert "up -d --no-deps --no-build worker-green worker-green-aux worker-green-bulk\n" in out
    assert "stop web-blue worker-blue worker-blue-aux worker-blue-bulk\n" in out
    assert {name: path.read_text() for name, path in paths.items() if path.exists()} == before


# ---------------------------------------------------------------- rollback


def test_rollback_goes_back_to_the_previous_release(deploy_module, rollback_module, paths):
    stack = fake_stack(deploy_module, paths)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    stack.calls.clear()
    stack.written.clear()
    stack.smoked.clear()
    assert rollback_module.main([], stack=stack) == 0
    assert stack.calls[0] == ("up", "-d", "--no-deps", "web-blue", *WORKERS["blue"])
    assert stack.smoked == ["blue"]
    assert stack.written == [(100, 0)]
    assert ("up", "-d", "--no-deps", "beat") in stack.calls
    assert stack.calls[-1] == ("stop", "web-green", *WORKERS["green"])
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
    assert stack.calls == [("stop", "web-green", *WORKERS["green"])]


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


# ---------------------------------------------------------------- every worker service of a colour


def test_compose_yaml_gives_each_colour_its_three_worker_services():
    """The split of compose.yaml (README "Celery queues"); the tests below hold for any split."""
    for colour, workers in WORKERS.items():
        assert workers[0] == f"worker-{colour}"
        assert {f"worker-{colour}", f"worker-{colour}-aux", f"worker-{colour}-bulk"} <= set(workers)


def test_release_reads_the_services_of_compose_yaml_like_yaml(deploy_module):
    release = deploy_module.release
    assert release.compose_services((ROOT / "compose.yaml").read_text()) == COMPOSE_SERVICES
    text = """x-worker: &worker
  image: app
services:
  # a comment
  web-blue: &web
    command: |
      worker-blue-fake:
  "worker-blue":
    <<: *worker

  worker-blue-aux: {image: app}
  worker-bluex:
    environment:
      worker-blue-env: x
volumes:
  worker-blue-data:
"""
    assert release.compose_services(text) == list(yaml.safe_load(text)["services"])
    assert release.worker_services(release.compose_services(text), "blue") == [
        "worker-blue",
        "worker-blue-aux",
    ]
    assert release.worker_services(["worker-blue-aux", "worker-green", "worker-blue"], "blue") == [
        "worker-blue",
        "worker-blue-aux",
    ]


def services_in(calls, verb: str) -> set[str]:
    return {name for call in calls if call[0] == verb for name in call if name.startswith("w")}


@pytest.mark.parametrize("active", ["blue", "green"])
def test_deploy_rollback_and_drain_start_and_stop_every_worker_service_of_a_colour(
    deploy_module, rollback_module, drain_module, paths, active
):
    """Fails when a worker service of compose.yaml is not pulled, started and stopped with its
    colour (the old colour's would keep consuming its queues with the old code, the new
    colour's queues would have no consumer once the old colour stops)."""
    idle = "green" if active == "blue" else "blue"
    colour = {c: {f"web-{c}", *workers_of(c)} for c in ("blue", "green")}
    stack = fake_stack(deploy_module, paths)
    stack.write_weights(*deploy_module.bluegreen.switch_weights(active))
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    assert services_in(stack.calls, "pull") == colour[idle]
    assert services_in(stack.calls, "up") == colour[idle]
    assert services_in(stack.calls, "stop") == colour[active]

    stack.calls.clear()
    assert rollback_module.main([], stack=stack) == 0
    assert services_in(stack.calls, "up") == colour[active]
    assert services_in(stack.calls, "stop") == colour[idle]

    drained = fake_stack(drain_module, paths)
    assert drain_module.main([idle], stack=drained) == 0
    assert services_in(drained.calls, "stop") == colour[idle]


def test_a_worker_service_added_to_compose_yaml_follows_its_colour(
    deploy_module, rollback_module, paths, tmp_path
):
    """No list of workers to keep in step in the scripts: a new worker-<colour>-* service of
    compose.yaml is pulled, started, health-checked, stopped on a failed deploy and drained."""
    compose = (ROOT / "compose.yaml").read_text()
    extra = "\n".join(
        f"  worker-{colour}-reports:\n    <<: *worker\n    command: [celery, worker, -Q, reports]"
        for colour in ("blue", "green")
    )
    compose = compose.replace("\nservices:\n", f"\nservices:\n{extra}\n", 1)
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(compose)
    assert {"worker-blue-reports", "worker-green-reports"} <= set(
        yaml.safe_load(compose)["services"]
    )
    checked = []

    def healthy(service):
        checked.append(service)
        return True

    stack = fake_stack(deploy_module, paths, compose_file=compose_file, healthy=healthy)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    assert "worker-green-reports" in stack.calls[0] and stack.calls[0][0] == "pull"
    assert "worker-green-reports" in services_in(stack.calls, "up")
    assert "worker-green-reports" in checked
    assert stack.calls[-1] == ("stop", "web-blue", "worker-blue", "worker-blue-reports",
                               "worker-blue-aux", "worker-blue-bulk")  # fmt: skip
    stack.calls.clear()
    assert rollback_module.main([], stack=stack) == 0
    assert "worker-blue-reports" in services_in(stack.calls, "up")
    assert "worker-green-reports" in services_in(stack.calls, "stop")

    failing = fake_stack(deploy_module, paths, compose_file=compose_file, metrics=(0.5, 0.1))
    assert deploy_module.main(["v3", "--observe", "15"], stack=failing) == 1
    assert [call for call in failing.calls if call[0] == "stop"] == [
        ("stop", "worker-green", "worker-green-reports", "worker-green-aux", "worker-green-bulk")
    ]


def test_new_workers_that_never_get_healthy_get_no_traffic(deploy_module, paths, capsys):
    """Every queue needs a consumer of the new colour before the old colour may go: a worker
    service that never answers its health check (a ping through the broker) fails the deploy
    before any traffic moves, and all the new colour's workers stop."""
    stack = fake_stack(deploy_module, paths, healthy=lambda service: service != "worker-green-bulk")
    assert deploy_module.main(["v2", "--ready-timeout", "20"], stack=stack) == 1
    assert stack.written == [(100, 0)]
    assert stack.calls[-1] == ("stop", *WORKERS["green"])
    assert "waiting for worker-green-bulk healthy" in capsys.readouterr().err


def test_rollback_waits_for_every_worker_of_the_previous_colour(
    deploy_module, rollback_module, paths, capsys
):
    stack = fake_stack(deploy_module, paths)
    assert deploy_module.main(["v2", "--observe", "15"], stack=stack) == 0
    failing = fake_stack(
        rollback_module, paths, healthy=lambda service: service != "worker-blue-aux"
    )
    assert rollback_module.main(["--ready-timeout", "10"], stack=failing) == 1
    assert failing.written == [] and failing.weights() == (0, 100)
    assert not any(call[0] == "stop" for call in failing.calls)
    assert "waiting for worker-blue-aux healthy" in capsys.readouterr().err


def test_a_compose_file_without_a_colours_worker_is_refused(
    deploy_module, rollback_module, drain_module, paths, tmp_path, capsys
):
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(
        "services:\n  web-blue: {}\n  web-green: {}\n  worker-blue: {}\n  worker-green-aux: {}\n"
    )
    stack = fake_stack(deploy_module, paths, compose_file=compose_file)
    assert deploy_module.main(["v2"], stack=stack) == 2
    assert stack.calls == [] and stack.written == []
    assert "has no service worker-green" in capsys.readouterr().err

    paths["record"].write_text(
        deploy_module.release.Record(
            deploy_module.release.Release("blue", "v1"),
            deploy_module.release.Release("green", "v0"),
        ).as_json()
    )
    stack = fake_stack(rollback_module, paths, compose_file=compose_file)
    assert rollback_module.main([], stack=stack) == 2
    assert stack.calls == [] and stack.written == []

    stack = fake_stack(drain_module, paths, compose_file=compose_file)
    stack.write_weights(0, 100)
    stack.written.clear()
    assert drain_module.main(["blue"], stack=stack) == 0  # blue's workers are all there
    stack = fake_stack(drain_module, paths, compose_file=compose_file)
    assert drain_module.main(["green"], stack=stack) == 1
    assert stack.calls == [] and stack.written == []
