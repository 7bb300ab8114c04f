"""Where a process's threads spend their time, from /proc: running, waiting for a CPU, for a lock, or idle.

    .venv/bin/python benchmarks/thread_sample.py PID [--seconds 20] [--period 0.002]

Samples every thread's state and wait channel (``/proc/PID/task/TID/{stat,wchan}``) every ``--period``
seconds, and reads each thread's CPU time and run-queue wait (``schedstat``) at the start and the end. Per
thread it prints the CPU seconds, the seconds it was ready but waited for a CPU, and the share of samples
running (``RUN``), in a futex (a lock, the GIL), in ``do_epoll_wait`` (an idle event loop) and so on. The
event loop of ``hazardscan serve`` is the process's main thread (marked ``MAIN``). Linux only; how
/healthz latency under load was traced to refused bodies read in the loop
(``benchmarks/reports/service_load.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def schedstat(task: Path) -> tuple[int, int]:
    """(ns on a CPU, ns ready but waiting for one) of a thread."""
    fields = _read(task / "schedstat").split()
    return (int(fields[0]), int(fields[1])) if len(fields) >= 2 else (0, 0)


def state_of(stat: str) -> tuple[str, str]:
    """(name, one-letter state) from a ``/proc/.../stat`` line (the name may hold spaces and parentheses)."""
    return stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pid", type=int)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--period", type=float, default=0.002)
    args = parser.parse_args()
    tasks = Path(f"/proc/{args.pid}/task")
    start = {int(t.name): schedstat(t) for t in tasks.iterdir()}
    seen: dict[int, Counter[str]] = defaultdict(Counter)
    names: dict[int, str] = {}
    samples = 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        for task in tasks.iterdir():
            stat = _read(task / "stat")
            if not stat:
                continue
            tid = int(task.name)
            names[tid], state = state_of(stat)
            seen[tid]["RUN" if state == "R" else _read(task / "wchan") or "?"] += 1
        samples += 1
        time.sleep(args.period)
    lines = [f"{samples} samples of {len(seen)} threads over {args.seconds:g} s"]
    for tid, counts in sorted(seen.items(), key=lambda kv: -kv[1]["RUN"]):
        cpu, wait = schedstat(tasks / str(tid))
        cpu0, wait0 = start.get(tid, (0, 0))
        total = sum(counts.values())
        top = ", ".join(f"{k} {v * 100 / total:.0f}%" for k, v in counts.most_common(4))
        mark = "MAIN " if tid == args.pid else ""
        lines.append(
            f"{tid:>7} {mark}{names[tid]:<16} cpu {(cpu - cpu0) / 1e9:6.2f} s  "
            f"run-queue wait {(wait - wait0) / 1e9:6.2f} s | {top}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    if not os.path.isdir("/proc/self/task"):
        sys.exit("needs Linux /proc")
    sys.exit(main())
