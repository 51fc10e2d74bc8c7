"""A benchmark's entry in bench/RESULTS.md: one per benchmark and setting, replaced in place by `--record`.

An entry sits between two marker lines and says when, on which code and machine and with which exact
command its figure was measured, the figure itself, and the figure against the benchmark's baseline
(raw SQL for claims, bare Prefect for throughput, the alternative for a connection setting, ...).
Recording replaces the entry of the same benchmark and setting and leaves every other byte of the
file alone; a new setting's entry goes after its benchmark's last entry, or under a new heading at
the end. The run-by-run history lives in git (`git log -p bench/RESULTS.md`), not in the file.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.harness.sampling import loadavg
from bench.harness.services import REPO_ROOT

RESULTS_PATH = REPO_ROOT / "bench" / "RESULTS.md"
_END = "<!-- end of entry -->"
_ENTRY = re.compile(r"^<!-- entry: (?P<key>.+?) -->\n.*?^" + re.escape(_END) + r"\n?", re.S | re.M)


@dataclass(frozen=True)
class Entry:
    """The current figure of one benchmark in one setting."""

    benchmark: str
    setting: str
    ratio: str
    rows: Sequence[tuple[str, str]]
    notes: Sequence[str] = ()

    @property
    def key(self) -> str:
        """Return what names the entry in the file: benchmark and setting."""
        return f"{self.benchmark} | {self.setting}"


@dataclass(frozen=True)
class Provenance:
    """When, on which code and machine, and with which command a figure was measured."""

    measured_at: str
    code: str
    machine: str
    load: str
    command: str

    @classmethod
    def of_this_run(cls, *, module: str, argv: Sequence[str], load_before: str) -> Provenance:
        """Describe the run in progress: now, HEAD, this machine, the load before and now."""
        return cls(
            measured_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            code=code_version(),
            machine=machine_text(),
            load=f"{load_before} → {loadavg()}",
            command=command_line(module, argv),
        )


def command_line(module: str, argv: Sequence[str]) -> str:
    """Return the command as one would type it from the repo root."""
    args = " ".join(shlex.quote(a) for a in argv)
    return f"cd {REPO_ROOT} && {sys.executable} -m {module} {args}".rstrip()


def code_version() -> str:
    """Return the commit that ran, and how many files of the code under test had uncommitted changes."""
    paths = ["src", "flows.yaml", "migrations", "bench", ":(exclude)bench/RESULTS.md"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *paths],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + (f" + {len(dirty)} uncommitted file(s) in src/bench/flows.yaml/migrations" if dirty else " (clean)")


def machine_text() -> str:
    """Return the CPUs, RAM and versions a figure depends on, in one line."""
    import prefect

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as handle:
            ram = f"{int(handle.readline().split()[1]) // 1024} MB RAM"
    except (OSError, ValueError, IndexError):
        ram = "unknown RAM"
    return f"{os.cpu_count()} CPUs ({cpu}), {ram}, Python {platform.python_version()}, prefect {prefect.__version__}"


def render(entry: Entry, provenance: Provenance) -> str:
    """Return the entry as the lines it takes in RESULTS.md, markers included."""
    lines = [
        f"<!-- entry: {entry.key} -->",
        f"### {entry.benchmark} · {entry.setting}",
        f"- measured {provenance.measured_at} · code {provenance.code} · {provenance.machine} · "
        f"load (1/5/15 min) {provenance.load}",
        f"- command: `{provenance.command}`",
        f"- **{entry.ratio}**",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in entry.rows],
        *[f"- {note}" for note in entry.notes],  # a list item ends the table: no blank line needed
        _END,
    ]
    return "\n".join(lines) + "\n"


def entries(text: str) -> dict[str, str]:
    """Return each entry's text in a RESULTS.md text by its key."""
    return {match["key"]: match.group(0) for match in _ENTRY.finditer(text)}


def _check_markers(text: str) -> None:
    """Refuse a text with an entry that has no end marker: its match would swallow the next entry (it did once)."""
    starts = [line for line in text.splitlines() if line.startswith("<!-- entry: ")]
    ends = text.splitlines().count(_END)
    if len(starts) != ends or len(entries(text)) != len(starts):
        raise ValueError(f"RESULTS.md: {len(starts)} entries but {ends} end markers; mend the file before recording")


def replace_entry(text: str, entry: Entry, provenance: Provenance) -> str:
    """Return the text with this benchmark's entry for this setting replaced, or added after the benchmark's last."""
    _check_markers(text)
    block = render(entry, provenance)
    found = {match["key"]: match for match in _ENTRY.finditer(text)}
    if entry.key in found:
        match = found[entry.key]
        return text[: match.start()] + block + text[match.end() :]
    same_benchmark = [m for key, m in found.items() if key.split(" | ", 1)[0] == entry.benchmark]
    if same_benchmark:
        end = max(m.end() for m in same_benchmark)
        return text[:end] + "\n" + block + text[end:]
    return text.rstrip("\n") + f"\n\n## {entry.benchmark}\n\n" + block


def record(entry: Entry, provenance: Provenance, *, path: Path = RESULTS_PATH) -> None:
    """Replace (or add) the entry in RESULTS.md and say so."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    path.write_text(replace_entry(text, entry, provenance))
    print(f"[bench] recorded '{entry.key}' in {path}")


def record_run(entry: Entry, *, module: str, argv: Sequence[str], load_before: str, path: Path = RESULTS_PATH) -> None:
    """Record the entry of the run in progress, with its own provenance."""
    record(entry, Provenance.of_this_run(module=module, argv=argv, load_before=load_before), path=path)
