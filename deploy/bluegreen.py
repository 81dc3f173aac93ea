"""Blue/green weights for Traefik's weighted service "app" (deploy/traefik/dynamic/weights.yml).

Pure: no Django and no I/O, except `write_weights_atomically` at the end, which writes a temporary
``*.tmp`` file in the same directory (Traefik's file provider ignores it) and renames it over the
target, so Traefik and any other reader see the old file or the new one, never a partial one.

Weights are (blue, green) pairs of integers in 0..100, not both 0. Traefik's weighted round robin
only uses their ratio (9/1 splits like 90/10); the helpers here keep them summing to 100 so that
they read as percentages. A colour with weight 0 gets no new requests (its sticky clients too).

Stdlib only, so deploy/bin/weights runs with any Python >= 3.11 on the deploy host.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

Colour = Literal["blue", "green"]
Decision = Literal["proceed", "rollback", "wait"]

COLOURS: tuple[Colour, Colour] = ("blue", "green")
DEFAULT_STEPS: tuple[int, ...] = (5, 25, 50, 100)
SERVICE = "app"
COOKIE = "app_colour"
WEIGHTS_FILENAME = "weights.yml"


def check_colour(colour: str) -> Colour:
    if colour not in COLOURS:
        raise ValueError(f"colour must be blue or green, not {colour!r}")
    return colour


def other(colour: str) -> Colour:
    """The idle colour when `colour` is active, and the other way round."""
    return "green" if check_colour(colour) == "blue" else "blue"


def _check_weight(name: str, value: object) -> int:
    # bool is an int subclass: True must not pass for a weight of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} weight must be an integer, not {value!r}")
    if not 0 <= value <= 100:
        raise ValueError(f"{name} weight must be between 0 and 100, not {value}")
    return value


def check_weights(blue: object, green: object) -> tuple[int, int]:
    pair = (_check_weight("blue", blue), _check_weight("green", green))
    if pair == (0, 0):
        raise ValueError("blue and green weights cannot both be 0: no colour would get traffic")
    return pair


def _weights(colour: str, share: int) -> tuple[int, int]:
    """(blue, green) with `share` % for `colour` and the rest for the other one."""
    _check_weight(colour, share)
    return (share, 100 - share) if check_colour(colour) == "blue" else (100 - share, share)


def weights_file(blue: int, green: int, *, sticky: bool = True) -> str:
    """The text of weights.yml: the weighted service "app" over app-blue and app-green."""
    blue, green = check_weights(blue, green)
    lines = [
        "# Written by deploy/bin/weights (deploy/bluegreen.py): do not edit by hand.",
        "# The colours and the router are in app.yml; only this file changes on a deploy.",
        "http:",
        "  services:",
        f"    {SERVICE}:",
        "      weighted:",
        "        services:",
        f"          - name: {SERVICE}-blue",
        f"            weight: {blue}",
        f"          - name: {SERVICE}-green",
        f"            weight: {green}",
        # Children's health checks (app.yml) propagate: a colour failing /health/ready gets none.
        "        healthCheck: {}",
    ]
    if sticky:
        # A canary user stays on the colour that served their first request while its weight is
        # above 0. Not `secure`: the web entry point is plain HTTP; the cookie holds no secret.
        lines += [
            "        sticky:",
            "          cookie:",
            f"            name: {COOKIE}",
            "            httpOnly: true",
            "            sameSite: lax",
        ]
    return "\n".join(lines) + "\n"


_WEIGHT_RE = re.compile(
    rf"-\s*name:\s*[\"']?{SERVICE}-(blue|green)[\"']?\s*\n\s*weight:\s*(-?\d+)", re.MULTILINE
)


def parse_weights(text: str) -> tuple[int, int]:
    """(blue, green) read back from a weights.yml written by `weights_file`."""
    found: dict[str, int] = {}
    for colour, weight in _WEIGHT_RE.findall(text):
        if colour in found:
            raise ValueError(f"weights file names {SERVICE}-{colour} twice")
        found[colour] = int(weight)
    missing = [c for c in COLOURS if c not in found]
    if missing:
        raise ValueError(f"weights file has no weight for {', '.join(missing)}")
    return check_weights(found["blue"], found["green"])


def active_colour(blue: int, green: int) -> Colour:
    """The colour with more traffic; a tie (50/50) has none, and raises ValueError."""
    blue, green = check_weights(blue, green)
    if blue == green:
        raise ValueError(f"weights are even ({blue}/{green}): no colour is active")
    return "blue" if blue > green else "green"


def _check_steps(steps: Sequence[int]) -> tuple[int, ...]:
    steps = tuple(steps)
    if not steps:
        raise ValueError("steps cannot be empty")
    for step in steps:
        _check_weight("step", step)
        if step == 0:
            raise ValueError("a step must be above 0")
    if any(a >= b for a, b in itertools.pairwise(steps)):
        raise ValueError(f"steps must increase: {steps}")
    if steps[-1] != 100:
        raise ValueError(f"the last step must be 100, not {steps[-1]}")
    return steps


def next_step(current_new_weight: int, steps: Sequence[int] = DEFAULT_STEPS) -> int | None:
    """The next weight for the new colour after `current_new_weight`; None once it has 100."""
    current = _check_weight("current", current_new_weight)
    for step in _check_steps(steps):
        if step > current:
            return step
    return None


def canary_decision(
    error_ratio: float | None,
    p95_seconds: float | None,
    *,
    max_error_ratio: float = 0.01,
    max_p95: float = 0.5,
) -> Decision:
    """Whether a canary step may go on, from the new colour's 5xx ratio and p95 latency.

    "rollback" as soon as one known value is over its limit; "wait" while a value is unknown (None,
    or NaN: Prometheus's 0/0 when the colour has had no requests yet), since no data is no proof
    of health; "proceed" only when both are known and within their limits (a limit is allowed).
    """
    values = {"error_ratio": error_ratio, "p95_seconds": p95_seconds}
    known: dict[str, float] = {}
    for name, value in values.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number or None, not {value!r}")
        if value < 0:
            raise ValueError(f"{name} cannot be negative: {value}")
        known[name] = value
    if known.get("error_ratio", 0) > max_error_ratio or known.get("p95_seconds", 0) > max_p95:
        return "rollback"
    if len(known) < len(values):
        return "wait"
    return "proceed"


def canary_weights(active: str, percent: int) -> tuple[int, int]:
    """(blue, green) sending `percent` % to the idle colour and the rest to `active`."""
    return _weights(other(active), percent)


def plan_deploy(active: str, steps: Sequence[int] = DEFAULT_STEPS) -> list[tuple[int, int]]:
    """The (blue, green) weights, step by step, that shift traffic from `active` to the idle
    colour: for active blue, [(95, 5), (75, 25), (50, 50), (0, 100)]."""
    return [canary_weights(active, step) for step in _check_steps(steps)]


def switch_weights(colour: str) -> tuple[int, int]:
    """All traffic to `colour`."""
    return _weights(colour, 100)


def rollback_weights(active: str) -> tuple[int, int]:
    """All traffic back to `active`, the colour that served before the deploy began."""
    return switch_weights(active)


def drain_weights(colour: str) -> tuple[int, int]:
    """No new traffic to `colour` (weight 0), all of it to the other colour."""
    return _weights(colour, 0)


# The only I/O of the module.
def write_text_atomically(
    path: str | os.PathLike[str], text: str, *, default_mode: int = 0o644
) -> Path:
    """Write `text` at `path` so that a reader sees the old file or the new one, never part.

    The text goes to ``<name>.<random>.tmp`` in the same directory (same filesystem, and a name
    Traefik's file provider ignores), is fsynced, and is renamed over `path` with os.replace,
    and the rename is made durable. The mode of an existing file is kept (`default_mode`
    otherwise), so a non-root Traefik can still read the weights.
    """
    target = Path(path)
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = default_mode
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def write_weights_atomically(
    path: str | os.PathLike[str], blue: int, green: int, *, sticky: bool = True
) -> Path:
    """weights.yml at `path`, written with `write_text_atomically`."""
    return write_text_atomically(path, weights_file(blue, green, sticky=sticky))
