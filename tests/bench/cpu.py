"""How busy the machine was with work that is not the benchmark's: on a shared 2-core machine a
figure means little without it.

Ours is this process and every live descendant (servers, wrk), each with the CPU of the children
it has reaped, so wrk runs and stopped servers stay counted. The rest of /proc/stat's busy time
is "others" — PostgreSQL and Redis included, since they are not our children.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return user + nice + system + irq + softirq + steal


def tree_ticks(root: int) -> int:
    """CPU ticks of `root` and every live descendant, each with its reaped children's."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            after = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pid = int(entry.name)
            parents[pid] = int(after[1])
            # utime, stime, cutime, cstime: fields 14-17 of stat
            ticks[pid] = sum(int(x) for x in after[11:15])
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    busy: int
    ours: int

    @classmethod
    def take(cls) -> CpuSnapshot:
        return cls(time.monotonic(), _busy_ticks(), tree_ticks(os.getpid()))

    def others_cores_since(self, earlier: CpuSnapshot) -> float:
        """Average number of cores busy with other work between `earlier` and this one."""
        elapsed = self.at - earlier.at
        if elapsed <= 0:
            return 0.0
        others = (self.busy - earlier.busy) - (self.ours - earlier.ours)
        return max(0.0, others / TICKS / elapsed)

    def busy_s_since(self, earlier: CpuSnapshot) -> float:
        """CPU seconds the whole machine was busy between `earlier` and this one, all work."""
        return (self.busy - earlier.busy) / TICKS
