"""Autoscaling decisions for web-<colour> and the worker services of a colour (policy in
/work/shared/OPS.md).

Pure: stdlib only, no I/O and no clock (``now`` is always a parameter, in epoch seconds), so every
rule can be tested with synthetic series. deploy/autoscaler/run.py reads Prometheus, calls these
functions and applies the result with ``docker compose``.

What is scaled on what:

    web-<colour>              p95 latency of the colour (Traefik)          WebPolicy, 2 to 16
    worker-<colour>           SII envelopes waiting (app gauge)            SII_WORKERS, 1 to 8
    worker-<colour>-aux       Celery queue length of pdf, email and ai     AUX_WORKERS, 1 to 4
    worker-<colour>-bulk      Celery queue length of bulk                  BULK_WORKERS, 1 to 3

(the Celery queue lengths come from celery-exporter, so only with the monitoring profile on).

Web (per colour): min 2, max 16 replicas. Up by 2 when p95 latency > 1.2 s has held for 5 min
(cooldown 10 min after any up-scale); down by 1 when p95 < 0.6 s has held for 15 min (cooldown
30 min after any scaling). Between 0.6 s and 1.2 s nothing happens (hysteresis).

Workers (each service with its own WorkerPolicy): desired = clamp(ceil(queue / target), min, max)
from its queue length; up at once to the desired count (cooldown 2 min after an up-scale), down
by 1 only when the queue has stayed below the down threshold for 10 min (cooldown 10 min after
any scaling).

"Held for D" means: the trailing run of samples that satisfy the condition has no gap longer than
``max_gap``, its newest sample is at most ``max_gap`` old, and it began at least D before ``now``.
A missing sample (None or NaN, such as Prometheus's 0/0 for a colour without traffic) breaks the
run, and a missing or stale newest sample (or an empty series, such as no celery-exporter)
holds: no data never scales.

``scalable`` is the guard that keeps ``beat`` (exactly one, never autoscaled) and anything that
is not one of the services above out of reach.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down", "hold"]

MINUTE = 60.0

_SCALABLE_RE = re.compile(r"web-(blue|green)|worker-(blue|green)(-aux|-bulk)?")


def scalable(service: str) -> bool:
    """True only for web-<colour>, worker-<colour>, worker-<colour>-aux and
    worker-<colour>-bulk (colour blue or green): never for beat or anything else."""
    return _SCALABLE_RE.fullmatch(service) is not None


@dataclass(frozen=True)
class Sample:
    at: float
    value: float | None


@dataclass(frozen=True)
class State:
    replicas: int
    last_scaled_at: float | None = None
    last_direction: str | None = None


@dataclass(frozen=True)
class Decision:
    replicas: int
    direction: Direction
    reason: str


@dataclass(frozen=True)
class WebPolicy:
    min_replicas: int = 2
    max_replicas: int = 16
    up_threshold: float = 1.2  # seconds of p95
    up_for: float = 5 * MINUTE
    up_step: int = 2
    up_cooldown: float = 10 * MINUTE  # after any up-scale
    down_threshold: float = 0.6
    down_for: float = 15 * MINUTE
    down_step: int = 1
    down_cooldown: float = 30 * MINUTE  # after any scaling
    max_gap: float = 2 * MINUTE  # longest hole in a series that still counts as "sustained"


@dataclass(frozen=True)
class WorkerPolicy:
    min_replicas: int = 1
    max_replicas: int = 8
    target_per_worker: float = 25.0  # messages waiting per replica (SII: envelopes)
    up_cooldown: float = 2 * MINUTE  # after any up-scale
    down_for: float = 10 * MINUTE
    down_cooldown: float = 10 * MINUTE  # after any scaling
    # Scale down only when the queue fits in one worker fewer with this much headroom.
    down_headroom: float = 0.8
    max_gap: float = 2 * MINUTE


# worker-<colour>: SII envelopes waiting (queued or uploading), 25 per replica.
SII_WORKERS = WorkerPolicy()
# worker-<colour>-aux (pdf, email, ai; CELERY_AUX_CONCURRENCY 4 per replica): short tasks a person
# waits for, so a burst of 50 waiting is worth one more replica.
AUX_WORKERS = WorkerPolicy(max_replicas=4, target_per_worker=50.0)
# worker-<colour>-bulk (bulk; CELERY_BULK_CONCURRENCY 2 per replica): long tasks (RCV imports up
# to an hour, certification runs, mailbox intake) that run large transactions one after another,
# each holding a PgBouncer server connection while it lasts, and make SII and IMAP calls of their
# own. The max stays small so that a backlog never takes a large share of the server pool
# (default_pool_size 40, shared with web and the SII workers): 3 replicas x 2 = 6 tasks at most.
# Nothing urgent waits on bulk, so a backlog may just take longer. The target is low (5) because
# each message is minutes of work, not seconds. Down only after 30 quiet minutes: the queue
# counts what waits, not what runs, and a replica stopped mid-import gets compose's stop grace
# (330 s) to finish; an import cut short comes back only after the broker's visibility timeout.
BULK_WORKERS = WorkerPolicy(
    max_replicas=3, target_per_worker=5.0, down_for=30 * MINUTE, down_cooldown=30 * MINUTE
)


def is_missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _ordered(samples: Sequence[Sample], now: float) -> list[Sample]:
    """Samples up to ``now`` (a sample from the future is ignored), oldest first."""
    return sorted((s for s in samples if s.at <= now), key=lambda s: s.at)


def latest(samples: Sequence[Sample], now: float, max_age: float) -> float | None:
    """The newest value if it is present and at most ``max_age`` old, else None."""
    ordered = _ordered(samples, now)
    if not ordered:
        return None
    newest = ordered[-1]
    if now - newest.at > max_age or is_missing(newest.value):
        return None
    return newest.value


def held_for(
    samples: Sequence[Sample],
    now: float,
    condition: Callable[[float], bool],
    max_gap: float,
) -> float:
    """How long (seconds before ``now``) ``condition`` has held without a break; 0 if it does
    not hold now, the newest sample is stale, or a missing value or a gap breaks the run."""
    ordered = _ordered(samples, now)
    if not ordered or now - ordered[-1].at > max_gap:
        return 0.0
    start: float | None = None
    later_at = ordered[-1].at
    for sample in reversed(ordered):
        value = sample.value
        if value is None or math.isnan(value) or not condition(value):
            break
        if later_at - sample.at > max_gap:
            break
        start = later_at = sample.at
    return 0.0 if start is None else now - start


def _cooling(state: State, now: float, cooldown: float, *, after: str | None = None) -> bool:
    """Whether the last scaling (in direction ``after``, or any) was less than ``cooldown`` ago."""
    if state.last_scaled_at is None:
        return False
    if after is not None and state.last_direction != after:
        return False
    return now - state.last_scaled_at < cooldown


def _bounds(replicas: int, low: int, high: int) -> Decision | None:
    if replicas < low:
        return Decision(low, "up", f"{replicas} replicas is below the minimum {low}")
    if replicas > high:
        return Decision(high, "down", f"{replicas} replicas is above the maximum {high}")
    return None


def decide_web(
    samples: Sequence[Sample], state: State, now: float, policy: WebPolicy = WebPolicy()
) -> Decision:
    """Replicas for one web colour from its p95 latency series (seconds)."""
    current = state.replicas
    out_of_bounds = _bounds(current, policy.min_replicas, policy.max_replicas)
    if out_of_bounds is not None:
        return out_of_bounds
    if latest(samples, now, policy.max_gap) is None:
        return Decision(current, "hold", "no recent p95 sample (missing data never scales)")

    high = held_for(samples, now, lambda v: v > policy.up_threshold, policy.max_gap)
    if high > 0:
        if high < policy.up_for:
            return Decision(current, "hold", f"p95 > {policy.up_threshold}s for {high:.0f}s only")
        if current >= policy.max_replicas:
            return Decision(current, "hold", f"p95 high but already at max {policy.max_replicas}")
        if _cooling(state, now, policy.up_cooldown, after="up"):
            return Decision(current, "hold", "p95 high but in the up-scale cooldown")
        target = min(policy.max_replicas, current + policy.up_step)
        return Decision(
            target, "up", f"p95 > {policy.up_threshold}s for {high:.0f}s: {current} -> {target}"
        )

    low = held_for(samples, now, lambda v: v < policy.down_threshold, policy.max_gap)
    if low > 0:
        if low < policy.down_for:
            return Decision(current, "hold", f"p95 < {policy.down_threshold}s for {low:.0f}s only")
        if current <= policy.min_replicas:
            return Decision(current, "hold", f"p95 low but already at min {policy.min_replicas}")
        if _cooling(state, now, policy.down_cooldown):
            return Decision(current, "hold", "p95 low but in the cooldown after scaling")
        target = max(policy.min_replicas, current - policy.down_step)
        return Decision(
            target,
            "down",
            f"p95 < {policy.down_threshold}s for {low:.0f}s: {current} -> {target}",
        )

    return Decision(current, "hold", "p95 within the hysteresis band")


def desired_workers(queue: float, policy: WorkerPolicy = WorkerPolicy()) -> int:
    """clamp(ceil(queue / target), min, max)."""
    wanted = math.ceil(max(0.0, queue) / policy.target_per_worker)
    return _clamp(wanted, policy.min_replicas, policy.max_replicas)


def decide_workers(
    queue_samples: Sequence[Sample],
    state: State,
    now: float,
    policy: WorkerPolicy = WorkerPolicy(),
) -> Decision:
    """Replicas for one worker service from its queue length (SII envelopes waiting for
    worker-<colour>, Celery messages waiting for -aux and -bulk)."""
    current = state.replicas
    out_of_bounds = _bounds(current, policy.min_replicas, policy.max_replicas)
    if out_of_bounds is not None:
        return out_of_bounds
    queue = latest(queue_samples, now, policy.max_gap)
    if queue is None:
        return Decision(current, "hold", "no recent queue sample (missing data never scales)")

    desired = desired_workers(queue, policy)
    if desired > current:
        if _cooling(state, now, policy.up_cooldown, after="up"):
            return Decision(current, "hold", f"queue {queue:.0f} but in the up-scale cooldown")
        return Decision(desired, "up", f"queue {queue:.0f}: {current} -> {desired}")

    if current > policy.min_replicas:
        threshold = (current - 1) * policy.target_per_worker * policy.down_headroom
        low = held_for(queue_samples, now, lambda v: v < threshold, policy.max_gap)
        if low == 0:
            return Decision(current, "hold", f"queue {queue:.0f} needs {current} workers")
        if low < policy.down_for:
            return Decision(current, "hold", f"queue < {threshold:.0f} for {low:.0f}s only")
        if _cooling(state, now, policy.down_cooldown):
            return Decision(current, "hold", "queue low but in the cooldown after scaling")
        target = current - 1
        return Decision(
            target, "down", f"queue < {threshold:.0f} for {low:.0f}s: {current} -> {target}"
        )

    return Decision(current, "hold", f"queue {queue:.0f}: {current} workers is enough")
