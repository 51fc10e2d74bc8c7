"""One watcher of outside suspension requests for every run the worker executes.

Prefect's flow engine opens, for each execution of a deployment's run, a thread, an event loop,
a client and an event subscription (which the server answers with a backfill query) so that a
suspension set from outside stops the run at its next boundary. Our runs execute for well under
a second between waits, so that was a new subscription per human step: 55 % of the worker's CPU
and the Prefect server's top cost (py-spy in bench/throughput.py). Here one Prefect
FlowRunSuspendingObserver, started once, watches every run in flight instead.

A run that suspends itself is not watched for that suspension: Prefect's observer would confirm
its own Suspended event with a read of the run (GET flow_run, ~1 per human step) for a run that
is stopping anyway.

prefect is pinned (3.9.1); the worker and tests/e2e/test_prefect_integration.py fail if the hooked name disappears.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import prefect.flow_engine
from prefect._flow_run_suspension import FlowRunSuspensionRequest
from prefect._internal.observers import FlowRunSuspendingObserver
from prefect.client.schemas.objects import State
from prefect.events import Event
from prefect.exceptions import Pause

logger = logging.getLogger("ecomflow.worker")

# The watch of this process while shared_suspension_watch() is open.
_active = SimpleNamespace(watch=None)


class _Observer(FlowRunSuspendingObserver):
    """Prefect's observer, passing over the Suspended events of runs that suspend themselves."""

    def __init__(self, *, suspending_itself: Callable[[UUID], bool], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._suspending_itself = suspending_itself

    def _handle_event(self, event: Event) -> None:
        run_id = event.resource.id.removeprefix("prefect.flow-run.")
        try:
            if self._suspending_itself(UUID(run_id)):
                return
        except ValueError:
            pass  # Prefect's handler reports the malformed id
        super()._handle_event(event)


class SharedSuspensionWatch:
    """A FlowRunSuspendingObserver on its own event-loop thread, shared by all executions."""

    def __init__(self) -> None:
        self._requests: dict[UUID, FlowRunSuspensionRequest] = {}
        self._suspending_themselves: set[UUID] = set()
        self._requests_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: FlowRunSuspendingObserver | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, timeout: float = 30.0) -> bool:
        """Start the observer; False (and Prefect's per-execution observer stays) if it could not start."""
        # The caller's context carries Prefect's settings (API URL) into the thread, as Prefect's own observer does.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="suspension-watch", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)
        return self._observer is not None

    def _run(self) -> None:
        try:
            asyncio.run(self._observe())
        except Exception:
            logger.warning("the suspension watch stopped", exc_info=True)
        finally:
            self._observer = None
            self._ready.set()

    async def _observe(self) -> None:
        self._loop, self._stopped = asyncio.get_running_loop(), asyncio.Event()
        async with _Observer(on_suspended=self._on_suspended, suspending_itself=self.is_suspending_itself) as observer:
            self._observer = observer
            self._ready.set()
            await self._stopped.wait()

    def _on_suspended(self, flow_run_id: UUID, state: State) -> None:
        with self._requests_lock:
            request = self._requests.get(flow_run_id)
        if request is not None:
            request.mark_requested(state)

    def is_suspending_itself(self, flow_run_id: UUID) -> bool:
        """Return whether the run is proposing (or has made) its own suspension in this execution."""
        with self._requests_lock:
            return flow_run_id in self._suspending_themselves

    def note_suspending_itself(self, flow_run_id: UUID, *, suspending: bool) -> None:
        """Note that the run proposes its own suspension, or that it did not suspend after all."""
        with self._requests_lock:
            if suspending:
                self._suspending_themselves.add(flow_run_id)
            else:
                self._suspending_themselves.discard(flow_run_id)

    @contextmanager
    def watch(self, flow_run_id: UUID, request: FlowRunSuspensionRequest) -> Iterator[None]:
        """Watch one run while it executes (the signature of Prefect's observe_flow_run_suspension)."""
        observer, loop = self._observer, self._loop
        if observer is None or loop is None:
            yield
            return
        with self._requests_lock:
            self._requests[flow_run_id] = request
        # Watched from the events alone, without Prefect's first read of the run's state: waiting for that read
        # held every execution up to 10 s when the server was slow, and not waiting piled the reads up in the
        # client's connection pool (with 10,000 returns started at once, starts fell to 0.8/s; bench.waiting_memory).
        # The run was just taken (Pending), not suspended; a suspension set from now on arrives as an event.
        loop.call_soon_threadsafe(observer.add_in_flight_flow_run_id, flow_run_id)
        try:
            yield
        finally:
            loop.call_soon_threadsafe(observer.remove_in_flight_flow_run_id, flow_run_id)
            with self._requests_lock:
                self._requests.pop(flow_run_id, None)
                self._suspending_themselves.discard(flow_run_id)

    def stop(self) -> None:
        """Close the observer and its thread."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextmanager
def shared_suspension_watch() -> Iterator[SharedSuspensionWatch]:
    """Route the flow engine's per-execution observer to one shared watch while inside."""
    shared = SharedSuspensionWatch()
    original = prefect.flow_engine.observe_flow_run_suspension
    if shared.start():
        prefect.flow_engine.observe_flow_run_suspension = shared.watch
        _active.watch = shared
    else:
        logger.warning("the shared suspension watch did not start; Prefect's per-execution observer stays")
    try:
        yield shared
    finally:
        prefect.flow_engine.observe_flow_run_suspension = original
        if _active.watch is shared:
            _active.watch = None
        shared.stop()


@contextmanager
def suspending_itself(flow_run_id: UUID) -> Iterator[None]:
    """Wrap a run's own suspension: the watch lets its Suspended event pass, unless it does not suspend after all."""
    shared: SharedSuspensionWatch | None = _active.watch
    if shared is None:
        yield
        return
    shared.note_suspending_itself(flow_run_id, suspending=True)
    try:
        yield
    except Pause:
        raise  # suspended: the execution ends, and with it the watch of the run
    except BaseException:
        shared.note_suspending_itself(flow_run_id, suspending=False)
        raise
    # Not suspended (this key was resumed before): the run goes on, watched as before.
    shared.note_suspending_itself(flow_run_id, suspending=False)
