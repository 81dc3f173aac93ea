"""Process-wide runtime settings, applied once at start-up by every process (web, workers, beat,
commands) and by the benchmarks, so that what is measured is what runs. No Django here.

Python's cyclic garbage collector, with its default thresholds (700, 10, 10), starts a young
collection every 700 new container objects and a full one whenever enough have survived: a
batch that loads 500 drafts with their lines (about 50,000 objects) ran several full
collections over the whole heap, and they were 60 % of the time spent loading the drafts. A
long-running Django process holds few reference cycles, so it collects less often, and the
objects alive after start-up (modules, the app registry, settings) are frozen out of the
collections altogether.
"""

import gc

DEFAULT_GC_THRESHOLDS = (50_000, 20, 100)


def gc_thresholds(value: str | None) -> tuple[int, int, int] | None:
    """PYTHON_GC_THRESHOLDS: "50000,20,100" (the default), or "python" for Python's own."""
    if value is None or not value.strip():
        return DEFAULT_GC_THRESHOLDS
    if value.strip().lower() == "python":
        return None
    try:
        parts = tuple(int(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p < 1 for p in parts):
        raise ValueError(
            f"PYTHON_GC_THRESHOLDS={value!r}: three positive integers expected, e.g. 50000,20,100"
        )
    return parts  # type: ignore[return-value]


def tune_gc(thresholds: tuple[int, int, int] | None) -> None:
    """Freeze what is alive now and collect less often; None leaves Python's defaults."""
    if thresholds is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
