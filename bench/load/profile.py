"""`--profile`: sample the gunicorn workers (and the Celery worker) with py-spy during a scenario
and summarise where their time went. py-spy is not a dependency of the project:
`.venv/bin/pip install py-spy` (it needs ptrace rights over the processes: the same user, or
root)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from bench.load.stack import BIN, ROOT


def py_spy() -> str | None:
    found = BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy record --subprocesses on a process group leader, collapsed stacks to a file."""

    def __init__(self, pid: int, out: Path, duration: float, *, rate: int = 50):
        self.out = out
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
        self.popen = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--duration",
                str(int(duration)),
                "--nonblocking",
                "--idle",
                "--output",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def finish(self, timeout: float = 30) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def _short(frame: str) -> str:
    """'dte_issue (dte/services.py)' from 'dte_issue (/…/dte/services.py:272)': by function."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    root = str(ROOT) + "/"
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(root):
        path = path[len(root) :]
    return f"{name} ({path})"


PROJECT = ("dte/", "erp/", "f29/", "ai/", "ops/")


def summarise(collapsed: Path, top: int = 20) -> list[str]:
    """Where the time handling requests and tasks went: only the samples of threads inside
    Django or the project count (a gthread worker's idle threads and its accept loop do not),
    idle ones included, so waiting on PostgreSQL or a lock shows. Inclusive shares of the
    project's functions, then the frames the samples were in."""
    if not collapsed.exists():
        return ["no profile written"]
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        frames = [_short(f) for f in stack.split(";") if " (" in f]
        paths = [f.rsplit("(", 1)[-1] for f in frames]
        if not any(p.startswith((*PROJECT, "django/")) for p in paths):
            continue
        count = int(count_text)
        total += count
        for name in set(frames):
            inclusive[name] += count
        self_time[frames[-1]] += count
    if not total:
        return ["the profile has no samples inside Django or the project"]

    def share(n: int) -> str:
        return f"{100 * n / total:5.1f} %"

    project = [
        (name, n)
        for name, n in inclusive.most_common()
        if name.rsplit("(", 1)[-1].startswith(PROJECT)
    ]
    lines = [f"{total} samples in requests and tasks (waiting included)"]
    lines.append("project functions, inclusive:")
    lines += [f"  {share(n)}  {name}" for name, n in project[:top]]
    lines.append("where the samples were (self):")
    lines += [f"  {share(n)}  {name}" for name, n in self_time.most_common(top)]
    return lines
