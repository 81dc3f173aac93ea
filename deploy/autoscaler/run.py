"""The autoscaler loop: Prometheus -> deploy/autoscaler/policy.py -> ``docker compose --scale``.

    python -m deploy.autoscaler.run --prometheus http://prometheus:9090 --once --dry-run
    python -m deploy.autoscaler.run --worker-colour blue --interval 60

Each round it reads (``/api/v1/query_range``, urllib only):

    web-<colour>          for every web colour, its p95 latency from Traefik's histogram
    worker-<colour>       the SII queue: envelopes waiting (QUEUE_QUERY, the app's gauge)
    worker-<colour>-aux   Celery messages waiting in pdf, email and ai (AUX_QUERY)
    worker-<colour>-bulk  Celery messages waiting in bulk (BULK_QUERY)

decides with the pure policy (each worker service with its own WorkerPolicy; targets from
``--target``, ``--aux-target`` and ``--bulk-target``) and, unless ``--dry-run``, applies a change
with ``docker compose up -d --no-recreate --scale <service>=N <service>``. The replicas and the
time of the last scaling of each service live in a small JSON state file (written tmp + rename).

The Celery queue lengths are celery-exporter's ``celery_queue_length`` (LLEN of the queue's list
in the Redis broker: messages waiting, not those running or reserved, nor countdown/ETA tasks),
so they exist only with the monitoring profile on; without it those queries answer no series
and the -aux and -bulk services hold.

One broker serves both colours, so the queues scale only the worker colour given by
``--worker-colour`` (``auto``: the colour with most traffic in Traefik's weights.yml; ``none``:
no worker service). ``beat`` is never scaled: every command passes through ``policy.scalable``.

A bad Prometheus answer (down, HTTP error, not JSON, status error) is logged and holds that
service for the round; the loop never dies from it. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from deploy.autoscaler.policy import (
    AUX_WORKERS,
    BULK_WORKERS,
    SII_WORKERS,
    Decision,
    Sample,
    State,
    WebPolicy,
    WorkerPolicy,
    decide_web,
    decide_workers,
    scalable,
)

log = logging.getLogger("autoscaler")

COLOURS = ("blue", "green")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = ROOT / "deploy" / "traefik" / "dynamic" / "weights.yml"
# The env file every compose call of the stack reads: the colours' image tags are there, so a
# new replica runs its colour's image (deploy/release.py keeps them current).
DEFAULT_COMPOSE = ["docker", "compose", "--env-file", str(ROOT / "deploy" / "env" / "compose.env")]

Runner = Callable[[Sequence[str]], int]
Decide = Callable[[Sequence[Sample], State, float], Decision]


def latency_query(colour: str) -> str:
    return (
        "histogram_quantile(0.95, sum by (le) (rate("
        f'traefik_service_request_duration_seconds_bucket{{service="app-{colour}@file"}}[1m])))'
    )


# Every web replica exports the same database-derived gauge: max per status, not a sum of copies.
QUEUE_QUERY = 'sum(max by (status) (dte_sii_queue_envelopes{status=~"queued|uploading"}))'

# The Celery queues each worker service consumes (compose.yaml's -Q; ops/settings.py routes).
AUX_QUEUES = ("pdf", "email", "ai")
BULK_QUEUES = ("bulk",)


def celery_queue_query(queues: Sequence[str]) -> str:
    """Messages waiting in the broker for these queues (celery-exporter, one series)."""
    if len(queues) == 1:
        return f'sum(celery_queue_length{{queue_name="{queues[0]}"}})'
    return f'sum(celery_queue_length{{queue_name=~"{"|".join(queues)}"}})'


AUX_QUERY = celery_queue_query(AUX_QUEUES)
BULK_QUERY = celery_queue_query(BULK_QUEUES)


class PrometheusError(Exception):
    pass


def query_range(
    base_url: str, query: str, start: float, end: float, step: float, timeout: float = 10.0
) -> list[Sample]:
    """One series from ``/api/v1/query_range`` as Samples ("NaN" becomes nan, the policy's
    missing value). No series (no data yet) is an empty list; anything malformed raises."""
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    url = f"{base_url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PrometheusError(f"{url}: {exc}") from exc
    try:
        if body["status"] != "success":
            raise PrometheusError(f"{url}: {body.get('error', body['status'])}")
        result = body["data"]["result"]
        if not result:
            return []
        if len(result) > 1:
            raise PrometheusError(f"{url}: {len(result)} series, expected one")
        return [Sample(float(at), float(value)) for at, value in result[0]["values"]]
    except PrometheusError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise PrometheusError(f"{url}: unexpected answer: {exc!r}") from exc


def compose_scale_command(
    service: str, replicas: int, compose: Sequence[str] = ("docker", "compose")
) -> list[str]:
    if not scalable(service):
        raise ValueError(f"{service!r} is never autoscaled")
    if replicas < 0:
        raise ValueError(f"replicas cannot be negative: {replicas}")
    return [*compose, "up", "-d", "--no-recreate", "--scale", f"{service}={replicas}", service]


def subprocess_runner(command: Sequence[str]) -> int:
    return subprocess.run(list(command), check=False).returncode


def load_states(path: Path) -> dict[str, State]:
    try:
        raw = json.loads(path.read_text())
        return {
            name: State(
                replicas=int(item["replicas"]),
                last_scaled_at=item.get("last_scaled_at"),
                last_direction=item.get("last_direction"),
            )
            for name, item in raw.items()
            if scalable(name)
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("state file %s unreadable (%s): starting afresh", path, exc)
        return {}


def save_states(path: Path, states: dict[str, State]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({k: asdict(v) for k, v in sorted(states.items())}, indent=2))
    os.replace(tmp, path)


def active_colour(weights_file: Path) -> str | None:
    try:
        from deploy import bluegreen

        return bluegreen.active_colour(*bluegreen.parse_weights(weights_file.read_text()))
    except (OSError, ValueError) as exc:
        log.warning("no active colour from %s: %s", weights_file, exc)
        return None


def worker_services(args: argparse.Namespace) -> list[tuple[str, str, WorkerPolicy]]:
    """(service suffix, query, policy) of each worker service of a colour, with the CLI's
    targets."""
    return [
        ("", QUEUE_QUERY, replace(SII_WORKERS, target_per_worker=args.target)),
        ("-aux", AUX_QUERY, replace(AUX_WORKERS, target_per_worker=args.aux_target)),
        ("-bulk", BULK_QUERY, replace(BULK_WORKERS, target_per_worker=args.bulk_target)),
    ]


def _workers(policy: WorkerPolicy) -> Decide:
    def decide(samples: Sequence[Sample], state: State, now: float) -> Decision:
        return decide_workers(samples, state, now, policy)

    return decide


def run_round(args: argparse.Namespace, runner: Runner, now: float) -> list[tuple[str, Decision]]:
    """One round over the services; returns what was decided for each."""
    web_policy = WebPolicy()
    states = load_states(args.state_file)

    def web(samples: Sequence[Sample], state: State, now: float) -> Decision:
        return decide_web(samples, state, now, web_policy)

    jobs: list[tuple[str, str, Decide, int, float]]
    jobs = [
        (f"web-{c}", latency_query(c), web, web_policy.min_replicas, web_policy.down_for)
        for c in args.web_colours
    ]
    worker_colour = args.worker_colour
    if worker_colour == "auto":
        worker_colour = active_colour(args.weights_file)
    if worker_colour:
        for suffix, query, policy in worker_services(args):
            jobs.append(
                (
                    f"worker-{worker_colour}{suffix}",
                    query,
                    _workers(policy),
                    policy.min_replicas,
                    policy.down_for,
                )
            )

    decisions: list[tuple[str, Decision]] = []
    for service, query, decide, initial, window in jobs:
        state = states.get(service, State(replicas=initial))
        try:
            samples = query_range(
                args.prometheus, query, now - window - 5 * 60, now, args.step, args.timeout
            )
        except PrometheusError as exc:
            log.error("%s: Prometheus: %s", service, exc)
            decision = Decision(state.replicas, "hold", f"Prometheus error: {exc}")
        else:
            decision = decide(samples, state, now)
        decisions.append((service, decision))
        if args.dry_run:
            print(f"{service}: {decision.direction} to {decision.replicas} ({decision.reason})")
        if decision.direction == "hold":
            log.info("%s: hold at %d (%s)", service, state.replicas, decision.reason)
            continue
        command = compose_scale_command(service, decision.replicas, args.compose)
        if args.dry_run:
            print(f"  would run: {shlex.join(command)}")
            continue
        log.info(
            "%s: %s to %d (%s)", service, decision.direction, decision.replicas, decision.reason
        )
        rc = runner(command)
        if rc != 0:
            log.error("%s: %s exited %d; state unchanged", service, shlex.join(command), rc)
            continue
        states[service] = State(decision.replicas, now, decision.direction)
        save_states(args.state_file, states)
    return decisions


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--prometheus", default=os.environ.get("PROMETHEUS_URL", "http://prometheus:9090")
    )
    parser.add_argument(
        "--web-colours",
        default="blue,green",
        type=lambda text: [c for c in text.split(",") if c],
        help="comma-separated web colours to scale (default blue,green)",
    )
    parser.add_argument(
        "--worker-colour",
        choices=[*COLOURS, "auto", "none"],
        default="auto",
        help="colour whose worker, worker-aux and worker-bulk services are scaled; auto: the "
        "active colour in the weights file, none: no worker service (default %(default)s)",
    )
    parser.add_argument("--weights-file", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument(
        "--state-file",
        type=Path,
        default=Path(os.environ.get("AUTOSCALER_STATE", "/var/lib/autoscaler/state.json")),
    )
    parser.add_argument("--compose", type=shlex.split, default=DEFAULT_COMPOSE)
    parser.add_argument(
        "--target",
        type=float,
        default=SII_WORKERS.target_per_worker,
        help="SII envelopes waiting per worker-<colour> replica (default %(default)s)",
    )
    parser.add_argument(
        "--aux-target",
        type=float,
        default=AUX_WORKERS.target_per_worker,
        help="pdf/email/ai tasks waiting per worker-<colour>-aux replica (default %(default)s)",
    )
    parser.add_argument(
        "--bulk-target",
        type=float,
        default=BULK_WORKERS.target_per_worker,
        help="bulk tasks waiting per worker-<colour>-bulk replica (default %(default)s)",
    )
    parser.add_argument("--step", type=float, default=30.0, help="query_range step, seconds")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--once", action="store_true", help="run one round and exit")
    parser.add_argument("--dry-run", action="store_true", help="print decisions, change nothing")
    args = parser.parse_args(argv)
    for colour in args.web_colours:
        if colour not in COLOURS:
            parser.error(f"unknown colour {colour!r}")
    if args.worker_colour == "none":
        args.worker_colour = None
    if not math.isfinite(args.interval) or args.interval <= 0:
        parser.error("--interval must be positive")
    for option in ("target", "aux_target", "bulk_target"):
        value = getattr(args, option)
        if not math.isfinite(value) or value <= 0:
            parser.error(f"--{option.replace('_', '-')} must be positive")
    return args


def main(
    argv: Sequence[str] | None = None,
    *,
    runner: Runner = subprocess_runner,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    while True:
        try:
            run_round(args, runner, clock())
        except Exception:  # the loop outlives any one bad round
            log.exception("autoscaler round failed")
            if args.once:
                return 1
        if args.once:
            return 0
        sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
