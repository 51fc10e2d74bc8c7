"""Where the CPU and the Prefect API calls go: py-spy sampling profiles and the Prefect server's access log."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Prefect's uvicorn access log ('"POST /api/flow_runs/filter HTTP/1.1" 200') gives the Prefect API calls a
# benchmark caused, by endpoint. Give these settings to the server process only (other processes would log
# their own uvicorn access lines too); the plain `debug` handler keeps rich's formatting cost out of the figures.
PREFECT_ACCESS_LOG_ENV = {"PREFECT_SERVER_LOGGING_LEVEL": "INFO", "PREFECT_LOGGING_LOGGERS_UVICORN_HANDLERS": "debug"}
_ACCESS_LINE = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/api/[^ ?"]*)')
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def prefect_calls(log: Path, start: int, end: int) -> dict[str, int]:
    """Count the Prefect API requests in a server's access log between two byte offsets, by endpoint."""
    if not log.exists() or end <= start:
        return {}
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read(end - start).decode(errors="replace")
    counts: dict[str, int] = {}
    for match in _ACCESS_LINE.finditer(text):
        key = f"{match.group(1)} {_UUID.sub('{id}', match.group(2))}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def py_spy() -> str | None:
    """Return the py-spy sampling profiler (the venv's or on PATH), or None when it is not installed."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_profiles(
    pids: Mapping[str, int], *, seconds: float, rate: int, out_dir: Path
) -> dict[str, tuple[subprocess.Popen, Path]]:
    """Sample each process and its children with py-spy for `seconds` (non-blocking, raw folded stacks).

    Return {} without py-spy.
    """
    executable = py_spy()
    if executable is None:
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    started = {}
    for name, pid in pids.items():
        path = out_dir / f"{name}.folded"
        argv = [
            executable,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--nonblocking",
            "--subprocesses",
            "--full-filenames",
            "--format",
            "raw",
            "--output",
            str(path),
        ]
        started[name] = (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path)
    return started


def finish_profiles(started: Mapping[str, tuple[subprocess.Popen, Path]], *, top: int = 8) -> dict[str, dict[str, Any]]:
    """Wait for the profilers and summarise each profile (see summarise_profile)."""
    summaries: dict[str, dict[str, Any]] = {}
    for name, (process, path) in started.items():
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if not path.exists():
            summaries[name] = {"samples": 0, "error": err.decode(errors="replace").strip()[-300:]}
            continue
        summaries[name] = {**summarise_profile(path.read_text(errors="replace"), top=top), "file": str(path)}
    return summaries


# Leaf frames of a thread that waits (in select, a lock, a queue or a socket read): py-spy's non-blocking
# mode, and threads that are runnable but not running on a loaded machine, still report them.
_WAITING_LEAF = re.compile(
    r"^(\S*select|Condition\.wait|Event\.wait|Thread\.join|\S*sleep|Queue\.get|SyncStream\.read|_worker|WorkerThread\.run|"
    r"_connection_worker_thread|Connection\.wait|\S*accept|\S*recv\S*) "
)


def _frame_label(frame: str) -> tuple[str, str]:
    """Split py-spy's 'func (path/to/module.py:12)' into ('func (to/module.py)', owning package or stdlib module)."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame, "other"
    func, path = match.groups()
    package = re.search(r"site-packages/([^/]+)", path)
    if package:
        owner = package.group(1)
    elif "/src/" in path or "/bench/" in path:
        owner = "ecomflow"
    else:
        owner = "stdlib " + Path(path).stem.strip("<>").replace("frozen ", "")
    return f"{func} ({'/'.join(path.split('/')[-2:])})", owner


def summarise_profile(text: str, *, top: int = 8) -> dict[str, Any]:
    """Summarise py-spy raw output: samples, working samples (not waiting), and of these the self time by package
    and by function and the inclusive time of ecomflow's and Prefect's functions, in %."""
    by_package: dict[str, int] = {}
    by_function: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = working = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames or not count.isdigit():
            continue
        n = int(count)
        total += n
        leaf, package = _frame_label(frames[-1])
        if _WAITING_LEAF.match(leaf):
            continue
        working += n
        by_function[leaf] = by_function.get(leaf, 0) + n
        by_package[package] = by_package.get(package, 0) + n
        # Inclusive time of our code and Prefect's (not of the event loop, threads or CLI around them).
        for label, owner in {_frame_label(f) for f in frames}:
            if owner in ("ecomflow", "prefect") and "(cli/" not in label and "__main__" not in label:
                inclusive[label] = inclusive.get(label, 0) + n
    if not working:
        return {"samples": total, "working_samples": 0}

    def shares(counts: dict[str, int], limit: int, below: float = 1.01) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        return [(label, round(100 * n / working, 1)) for label, n in ranked if n / working < below][:limit]

    return {
        "samples": total,
        "working_samples": working,
        "self_by_package": shares(by_package, top),
        "self_by_function": shares(by_function, top),
        # Frames in nearly every working sample (thread bootstrap, a serve loop) say nothing.
        "inclusive": shares(inclusive, top + 4, below=0.9),
    }
