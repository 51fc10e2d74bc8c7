"""CPU seconds and memory of process trees, read from /proc, and the machine's load average."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/<pid>/stat after the command (which may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """Return the pid and all its descendants that are alive now."""
    children = _children_map()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if os.path.exists(f"/proc/{current}"):
            found.append(current)
        todo.extend(children.get(current, []))
    return found


def _kb(pid: int, file: str, key: str) -> int:
    """Return a `key: N kB` line's N from /proc/<pid>/<file>, 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/{file}") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> dict[str, Any]:
    """Sum VmRSS (and PSS, which does not double-count shared pages) over a process and its descendants."""
    pids = process_tree(pid)
    return {
        "pids": len(pids),
        "rss_mb": round(sum(_kb(p, "status", "VmRSS") for p in pids) / 1024, 1),
        "pss_mb": round(sum(_kb(p, "smaps_rollup", "Pss") for p in pids) / 1024, 1),
        "threads": sum(_kb(p, "status", "Threads") for p in pids),
    }


def cpu_seconds(pid: int) -> float:
    """Return the user+system CPU seconds of a process, its live descendants and their reaped children."""
    total = 0
    for p in process_tree(pid):
        if (fields := _stat_fields(p)) is not None:
            # after ')': state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return round(total / _TICKS_PER_SECOND, 2)


def postgres_cpu_seconds() -> float | None:
    """Return the CPU seconds of every PostgreSQL server on this machine (the whole cluster), None if none runs.

    A postmaster's reaped children are its ended backends: the connections opened and closed count too.
    """
    postgres = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/comm") as handle:
                if handle.read().strip() == "postgres":
                    postgres[int(entry)] = _stat_fields(int(entry))
        except OSError:
            continue
    postmasters = [pid for pid, fields in postgres.items() if fields is not None and int(fields[1]) not in postgres]
    return sum(cpu_seconds(pid) for pid in postmasters) if postmasters else None


def cpu_seconds_by_name(pids: Mapping[str, int]) -> dict[str, float]:
    """Return cpu_seconds of each named process tree."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def loadavg() -> str:
    """Return the 1/5/15-minute load averages: other work on the machine skews every figure."""
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "unknown"
