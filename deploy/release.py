"""What deploy/bin/deploy, rollback and drain share: the stack's side effects (one method
each, so that a test can replace them), the release record, the env file's image tags, the
services of a colour, the smoke test through Traefik's preview entry point, the drain and the
lock.

Stdlib only, like deploy/bluegreen.py, so the scripts run with any Python >= 3.11 on the host.

The release record (deploy/env/release.json, not committed) is written only when traffic has
fully moved: `live` is the colour and tag serving now, `previous` the one before it, which is
what `rollback` goes back to. The tags themselves live in deploy/env/compose.env (BLUE_TAG,
GREEN_TAG, BEAT_TAG), which every `docker compose` call reads, so that a container started later
by hand or by the autoscaler (`--scale`) runs the same image as its colour.

A colour is its web (web-<colour>) and its Celery workers: every service of compose.yaml named
worker-<colour> or worker-<colour>-<something> (today worker-<colour> for sii and celery,
worker-<colour>-aux for pdf, email and ai, worker-<colour>-bulk for bulk). The list is read
from compose.yaml on every run (`colour_services`), so a worker service added there is pulled,
started, health-checked, drained and stopped with its colour without touching these scripts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shlex
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import bluegreen

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
WEIGHTS = DEPLOY / "traefik" / "dynamic" / bluegreen.WEIGHTS_FILENAME
ENV_FILE = DEPLOY / "env" / "compose.env"
COMPOSE_FILE = ROOT / "compose.yaml"
RECORD = DEPLOY / "env" / "release.json"
LOCK = DEPLOY / "env" / ".release.lock"
PREVIEW_HEADER = "X-App-Colour"

_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # Docker's rule for a tag


class Failed(Exception):
    """A step failed: the caller rolls traffic back (deploy) or stops (rollback)."""


def check_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise ValueError(f"not a valid image tag: {tag!r}")
    return tag


def tag_variable(colour: str) -> str:
    return f"{bluegreen.check_colour(colour).upper()}_TAG"


# ---------------------------------------------------------------- pure


def env_with(text: str, updates: Mapping[str, str]) -> str:
    """`text` (an env file) with each KEY=value of `updates` replaced in place, or appended at
    the end when the key is not there; comments, order and every other line are kept."""
    pending = dict(updates)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith("#") or "=" not in line:
            continue
        key = line.split("=", 1)[0].strip()
        if key in pending:
            lines[index] = f"{key}={pending.pop(key)}"
    lines += [f"{key}={value}" for key, value in pending.items()]
    return "\n".join(lines) + "\n"


_TOP_LEVEL_SERVICES_RE = re.compile(r"services\s*:\s*(?:#.*)?")
_SERVICE_KEY_RE = re.compile(r"""(["']?)([A-Za-z0-9][A-Za-z0-9._-]*)\1\s*:(?:\s.*)?""")


def compose_services(text: str) -> list[str]:
    """The service names of a Compose file, in the file's order: the keys of its top-level
    `services:` mapping. Stdlib only (the deploy host has no YAML parser); block style, the way
    compose.yaml is written (tests/ops/test_deploy.py compares the result with PyYAML's)."""
    services: list[str] = []
    inside, indent = False, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():  # a top-level key: `services:` or another one
            inside, indent = _TOP_LEVEL_SERVICES_RE.fullmatch(line.rstrip()) is not None, None
            continue
        if not inside:
            continue
        width = len(line) - len(line.lstrip())
        indent = width if indent is None else indent
        if width == indent and (key := _SERVICE_KEY_RE.fullmatch(line.strip())):
            services.append(key.group(2))
    return services


def worker_services(services: Iterable[str], colour: str) -> list[str]:
    """`colour`'s Celery worker services among `services`: worker-<colour> first, then every
    worker-<colour>-<group> in the given order."""
    main = f"worker-{bluegreen.check_colour(colour)}"
    found = [name for name in services if name == main or name.startswith(f"{main}-")]
    return sorted(found, key=lambda name: name != main)


def env_value(text: str, key: str) -> str | None:
    value = None
    for line in text.splitlines():
        if not line.lstrip().startswith("#") and "=" in line:
            name, raw = line.split("=", 1)
            if name.strip() == key:
                value = raw.strip()
    return value


@dataclass(frozen=True)
class Release:
    colour: str
    tag: str

    def as_dict(self) -> dict[str, str]:
        return {"colour": self.colour, "tag": self.tag}

    @classmethod
    def parse(cls, data: dict) -> Release:
        return cls(bluegreen.check_colour(data["colour"]), check_tag(data["tag"]))


@dataclass(frozen=True)
class Record:
    live: Release
    previous: Release | None

    def as_json(self) -> str:
        previous = self.previous.as_dict() if self.previous else None
        return json.dumps({"live": self.live.as_dict(), "previous": previous}, indent=2) + "\n"

    @classmethod
    def parse(cls, text: str) -> Record:
        try:
            data = json.loads(text)
            live = Release.parse(data["live"])
            previous = None if data.get("previous") is None else Release.parse(data["previous"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable release record: {exc}") from None
        return cls(live, previous)

    def after_deploy(self, release: Release) -> Record:
        return Record(release, self.live)

    def after_rollback(self) -> Record:
        if self.previous is None:
            raise ValueError("no previous release to roll back to")
        return Record(self.previous, self.live)


# ---------------------------------------------------------------- I/O


@contextlib.contextmanager
def locked(path: Path = LOCK) -> Iterator[None]:
    """One deploy or rollback at a time on this host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Failed(f"another deploy or rollback holds {path}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Stack:
    """The side effects, one method each, so that a test can replace them."""

    def __init__(
        self,
        compose: str = "docker compose",
        *,
        env_file: Path = ENV_FILE,
        prometheus: str = "http://127.0.0.1:9090",
        preview: str = "http://127.0.0.1:8081",
        traefik_api: str = "http://127.0.0.1:8080",
        weights: Path = WEIGHTS,
        record: Path = RECORD,
        compose_file: Path = COMPOSE_FILE,
        dry_run: bool = False,
    ):
        self.compose_cmd = [*shlex.split(compose), "--env-file", str(env_file)]
        self.env_file = Path(env_file)
        self.prometheus = prometheus.rstrip("/")
        self.preview = preview.rstrip("/")
        self.traefik_api = traefik_api.rstrip("/")
        self.weights_path = Path(weights)
        self.record_path = Path(record)
        self.compose_file = Path(compose_file)
        self.dry_run = dry_run
        self._services: list[str] | None = None

    # -- compose
    def compose(self, *args: str) -> None:
        command = [*self.compose_cmd, *args]
        print("+", shlex.join(command), flush=True)
        if not self.dry_run:
            subprocess.run(command, check=True, cwd=ROOT)

    def services(self) -> list[str]:
        """The services of compose.yaml, read once per run (one list for the whole deploy)."""
        if self._services is None:
            self._services = compose_services(self.compose_file.read_text(encoding="utf-8"))
        return list(self._services)

    def healthy(self, service: str) -> bool:
        if self.dry_run:
            return True
        out = subprocess.run(
            [*self.compose_cmd, "ps", "--format", "json", service],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        ).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]
        return bool(rows) and all(row.get("Health") == "healthy" for row in rows)

    # -- the env file and the release record
    def read_tag(self, variable: str) -> str | None:
        return env_value(self.env_file.read_text(encoding="utf-8"), variable)

    def set_tags(self, **tags: str) -> None:
        print("tags:", " ".join(f"{k}={v}" for k, v in tags.items()), flush=True)
        if not self.dry_run:
            text = self.env_file.read_text(encoding="utf-8")
            bluegreen.write_text_atomically(self.env_file, env_with(text, tags), default_mode=0o600)

    def read_record(self) -> Record | None:
        try:
            return Record.parse(self.record_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def write_record(self, record: Record) -> None:
        if not self.dry_run:
            bluegreen.write_text_atomically(self.record_path, record.as_json(), default_mode=0o600)

    # -- Traefik
    def weights(self) -> tuple[int, int]:
        return bluegreen.parse_weights(self.weights_path.read_text(encoding="utf-8"))

    def write_weights(self, blue: int, green: int) -> None:
        print(f"weights: blue {blue} / green {green}", flush=True)
        if not self.dry_run:
            bluegreen.write_weights_atomically(self.weights_path, blue, green)

    def applied_weights(self) -> tuple[int, int] | None:
        """The weights Traefik applies now, from its API (None when it does not answer)."""
        try:
            with urllib.request.urlopen(
                f"{self.traefik_api}/api/http/services/{bluegreen.SERVICE}@file", timeout=5
            ) as answer:
                services = json.load(answer)["weighted"]["services"]
            weights = {s["name"]: s.get("weight", 1) for s in services}
            return weights[f"{bluegreen.SERVICE}-blue"], weights[f"{bluegreen.SERVICE}-green"]
        except (OSError, ValueError, KeyError):
            return None

    def smoke(self, colour: str) -> str | None:
        """None when `colour`, reached through Traefik's preview entry point, is ready and
        serves pages; else why not."""
        if self.dry_run:
            return None
        for path in ("/health/ready", "/login/"):
            request = urllib.request.Request(
                f"{self.preview}{path}", headers={PREVIEW_HEADER: colour}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    served_by = answer.headers.get(PREVIEW_HEADER)
                    if answer.status != 200:
                        return f"{path}: HTTP {answer.status}"
            except urllib.error.HTTPError as exc:
                return f"{path}: HTTP {exc.code}"
            except OSError as exc:
                return f"{path}: {exc}"
            if served_by != colour:
                return f"{path} was answered by {served_by or 'no colour'}, not {colour}"
        return None

    # -- Prometheus
    def query(self, promql: str) -> float | None:
        if self.dry_run:
            return 0.0  # a dry run walks every step as if the metrics were fine
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                data = json.load(answer)
            value = float(data["data"]["result"][0]["value"][1])
        except (OSError, ValueError, KeyError, IndexError):
            return None
        return None if value != value else value  # NaN: 0/0, no requests yet

    def sleep(self, seconds: float) -> None:
        if not self.dry_run:
            time.sleep(seconds)


def wait_for(check, what: str, stack: Stack, timeout: float, every: float = 5) -> None:
    waited = 0.0
    while not check():
        if waited >= timeout:
            raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")
        stack.sleep(every)
        waited += every


def workers(stack: Stack, colour: str) -> list[str]:
    """`colour`'s Celery worker services in compose.yaml (worker-<colour> and its -aux, -bulk
    siblings); ValueError when compose.yaml has no worker-<colour>."""
    found = worker_services(stack.services(), colour)
    if f"worker-{colour}" not in found:
        raise ValueError(f"{stack.compose_file} has no service worker-{colour}")
    return found


def colour_services(stack: Stack, colour: str) -> list[str]:
    """Every service of `colour`: its web, then its workers."""
    return [f"web-{bluegreen.check_colour(colour)}", *workers(stack, colour)]


def wait_healthy(stack: Stack, services: Iterable[str], timeout: float) -> None:
    """Until every replica of every one of `services` is healthy (its Compose healthcheck: the
    web's /health/ready, a worker's ping through the broker)."""
    services = list(services)

    def unhealthy() -> list[str]:
        return [service for service in services if not stack.healthy(service)]

    waiting = unhealthy()
    waited = 0.0
    while waiting:
        if waited >= timeout:
            names = ", ".join(waiting)
            raise Failed(f"timed out after {timeout:.0f} s waiting for {names} healthy")
        stack.sleep(5)
        waited += 5
        waiting = unhealthy()


def start_colour(stack: Stack, colour: str, *, ready_timeout: float) -> None:
    """Bring up `colour`'s web and workers on the tag the env file gives it and wait until all
    are healthy; then it can be smoke-tested through Traefik's preview entry point."""
    services = colour_services(stack, colour)
    stack.compose("up", "-d", "--no-deps", *services)
    wait_healthy(stack, services, ready_timeout)


def smoke_or_fail(stack: Stack, colour: str) -> None:
    problem = stack.smoke(colour)
    if problem is not None:
        raise Failed(f"the smoke test of {colour} through Traefik failed: {problem}")


def move_beat(stack: Stack, tag: str) -> None:
    """The one beat runs the live release (a new task in the schedule needs the new code)."""
    stack.set_tags(BEAT_TAG=tag)
    stack.compose("up", "-d", "--no-deps", "beat")


def drain(stack: Stack, colour: str, *, reload_timeout: float = 30) -> None:
    """No new requests to `colour`, then stop it: its weight goes to 0, Traefik is seen
    applying that (its API), and `docker compose stop` sends SIGTERM to its web and to every
    one of its workers, on which gunicorn finishes the requests in flight (graceful timeout
    30 s, within the 45 s stop grace period) and each Celery worker its running tasks (a warm
    shutdown, within the workers' 330 s stop grace period)."""
    services = colour_services(stack, colour)  # before anything moves: compose.yaml readable
    expected = bluegreen.drain_weights(colour)
    if stack.weights() != expected:
        stack.write_weights(*expected)
    if stack.dry_run:
        print(f"(then wait until Traefik applies weight 0 to {colour})", flush=True)
    else:
        wait_for(
            lambda: stack.applied_weights() == expected,
            f"Traefik to apply weight 0 to {colour}",
            stack,
            reload_timeout,
            every=1,
        )
    stack.compose("stop", *services)
