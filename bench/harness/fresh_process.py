"""One measurement in a fresh process on a fresh, migrated database, with its peak memory over its start."""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness.databases import fresh_database, migrate


def rss_kb() -> int:
    """This process's resident set now, in kB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_mb_since(before_kb: int) -> float:
    """The process's maximum resident set (ru_maxrss) less its resident set before the work, in MB."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb) / 1024


def _child(work: Callable[..., dict[str, Any]], url: str, args: tuple[Any, ...], queue: Any) -> None:
    queue.put(work(url, *args))


def measure_in_fresh_process(
    work: Callable[..., dict[str, Any]], db: str, directory: Path, *args: Any
) -> dict[str, Any]:
    """Run work(url, *args), a module-level function, in a spawned process on a fresh, migrated database."""
    directory.mkdir()
    with fresh_database(db, directory) as url:
        migrate(url)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        process = context.Process(target=_child, args=(work, url, args, queue))
        process.start()
        result = queue.get()
        process.join()
        return result
