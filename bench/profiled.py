"""`signoff run` under cProfile in every thread, timed in each thread's CPU time (not wall time).

    python bench/profiled.py OUT.pstats [signoff arguments, default: run]

Used by `bench/e2e_load.py --profile`: the main loop, the SQLite writer thread and the Kubernetes
client's threads all count, and time spent waiting for the GIL or the network does not. The merged
stats are written to OUT when the process stops gracefully (SIGTERM). Profiling starts at SIGUSR1 (the
bench sends it when its measured load begins), so start-up and warm-up are left out.
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import runpy
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_profiles: list[cProfile.Profile] = []
_on = threading.Event()


def _start_in_thread(*_: Any) -> None:
    """The profile hook of every thread until SIGUSR1: then each thread's next call starts its profiler."""
    if _on.is_set():
        profile = cProfile.Profile(time.thread_time)
        _profiles.append(profile)
        profile.enable()  # replaces this hook in this thread


def _write(out: str) -> None:
    for profile in _profiles:
        profile.disable()  # only affects the calling thread; the others' stats are snapshotted as they are
        profile.snapshot_stats()
    pstats.Stats(*_profiles).dump_stats(out)


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["bot", *(sys.argv[2:] or ["run"])]
    threading.setprofile(_start_in_thread)
    sys.setprofile(_start_in_thread)
    signal.signal(signal.SIGUSR1, lambda *_: _on.set())
    atexit.register(_write, out)
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
