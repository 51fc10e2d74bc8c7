"""Pieces the import commands share: who acts (--as), and a progress bar on long imports."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import User
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import principal_of

# Below this many rows the import is over before a bar would be read.
PROGRESS_FROM = 2000


def principal_or_exit(session: Session, name: str) -> Principal:
    """The active user named by --as, or exit 2 saying there is none."""
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is None:
        typer.echo(f"error: --as {name}: no such active user", err=True)
        raise typer.Exit(2)
    return principal_of(session, user)


class ProgressBar:
    """A rich progress bar on long imports; a no-op on short ones. Entering gives `advance(done, total)` or None."""

    def __init__(self, total: int, label: str = "importing") -> None:
        self.total = total
        self.label = label
        self.bar: Progress | None = None

    def __enter__(self):
        if self.total < PROGRESS_FROM:
            return None
        self.bar = Progress(
            TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False
        )
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total)
        bar = self.bar
        return lambda done, total: bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
