"""Run ecomflow's flow runs inside this one long-lived process instead of a process per run.

The loop asks Prefect for scheduled (and resumed) runs of our deployments, takes each with a
Scheduled → Running transition where the server guards it (take_check.py), else Scheduled → Pending
(either way the server lets only one taker win), and runs it on a bounded
thread pool through Prefect's flow engine, so every run keeps its states and logs in the UI.
Each run it executes is leased in our database and the leases are renewed while the worker
lives; runs whose worker died are found by the lease scan and handed back (recovery.py).
With several workers, each takes its own share of the runs first (run_shares.py), knowing the
live workers from the presence each renews (worker_presence.py), so they do not race for a run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect import Flow, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import SyncClientContext
from prefect.exceptions import Abort, Pause
from prefect.flow_engine import run_flow
from prefect.settings import temporary_settings
from prefect.states import Pending, Running, Scheduled
from prefect.utilities.engine import propose_state_sync

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.orchestrator import run_leases, worker_presence
from ecomflow.engine.orchestrator.execution_client import new_execution_client
from ecomflow.engine.orchestrator.recovery import recover_abandoned_runs
from ecomflow.engine.orchestrator.result_defaults import with_result_defaults
from ecomflow.engine.orchestrator.run_shares import Claim, claim
from ecomflow.engine.orchestrator.suspension_watch import shared_suspension_watch
from ecomflow.engine.orchestrator.take_check import server_refuses_running_takes_of_cancelled_runs

logger = logging.getLogger("ecomflow.worker")


_thread_state = threading.local()


def _prepare_run_thread() -> None:
    """Enter, for the pool thread's whole life, the settings and the Prefect client every execution uses."""
    # Prefect's heartbeat thread adds ~1 s to every execution on exit; this worker tracks its runs itself.
    settings = temporary_settings(updates={"flows.heartbeat_frequency": None})
    settings.__enter__()
    # run_flow reuses a client already entered in its thread: a new one per execution cost ~20 ms of TLS setup
    # and a version probe (py-spy in bench/throughput.py: over half of the worker's CPU).
    client = SyncClientContext()
    # The engine's client knows the run it executes, sparing a read and a write-back per execution.
    client.client = new_execution_client()
    client.__enter__()
    _thread_state.kept = (settings, client)


# After a wake, how long the loop gathers more ready runs before it polls.
WAKE_GATHER_SECONDS = 0.1
# How often a worker renews its presence and reads who else is alive: a worker starting or stopping changes
# every worker's share within this (a run meanwhile in two shares costs one refused take, in none a grace).
PRESENCE_SECONDS = 2.0
# The line a refused take logs (another worker won, or the run left its wait): tests and benchmarks count it.
TAKE_REFUSED = "take refused"
# The line a take of another worker's share logs, once that run waited past the grace (run_shares.py).
TAKE_OVER = "taking over another worker's share past the grace"


def _scheduled_time(run: FlowRun) -> datetime | None:
    """When the run became due to a worker: the time Prefect's poll of scheduled runs compares."""
    if run.next_scheduled_start_time is not None:
        return run.next_scheduled_start_time
    return run.state.state_details.scheduled_time if run.state is not None else None


def _without_version(flow: Flow) -> Flow:
    """The flow with no version, so Prefect's engine writes none back to each new run (a PATCH per start).

    A flow's version is the hash of its source file; a run of ours shows its definition version as the
    deployment version instead, and the code it runs is the installed ecomflow's.
    """
    flow.version = None
    return flow


class FlowWorker:
    """Pick up runs of the given deployments and execute them on a thread pool."""

    def __init__(
        self,
        deployments: Mapping[UUID, Flow],
        *,
        concurrency: int,
        poll_seconds: float,
        lease_seconds: float = 30.0,
        max_takes: int = 3,
        retries: int = 0,
        retry_delay_seconds: float = 5.0,
        on_suspended: Callable[[FlowRun], None] = lambda run: None,
    ) -> None:
        # Flows replay idempotently, so a run that failed on a passing fault (the database restarting) is retried
        # rather than left failed with its instance stuck. Whole seconds: Prefect's run policy holds an int, and a
        # float made pydantic warn on every execution (968 warnings in worker.log for 1,000 starts).
        self._deployments = {
            deployment_id: flow.with_options(retries=retries, retry_delay_seconds=round(retry_delay_seconds))
            for deployment_id, flow in deployments.items()
        }
        self._concurrency = concurrency
        self._on_suspended = on_suspended
        self._poll_seconds = poll_seconds
        self._lease_seconds = lease_seconds
        self._max_takes = max_takes
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._last_renewal = self._last_scan = self._last_presence = float("-inf")
        # The live workers, this one among them once its presence is written; empty until then.
        self._live: list[str] = []
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="flow-run", initializer=_prepare_run_thread
        )
        self._result_defaults_settled = False
        # Through Pending until the server is found to guard Running (once, at start).
        self._takes_to_running: bool | None = None
        self._in_flight: set[UUID] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def poke(self) -> None:
        """Poll now instead of waiting for the next interval (a resume was just delivered)."""
        self._wake.set()

    def run_until(self, stop: threading.Event) -> None:
        """Poll and execute runs until stop is set, then wait for the runs in progress."""
        # One client for the loop: opening one per poll costs an extra request (a CSRF-token probe) each time.
        with get_client(sync_client=True) as client, shared_suspension_watch():
            self._client = client
            self._loop(stop)
            # Inside: the runs still executing end with the suspension watch they were started under.
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._withdraw_presence()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            chores = (
                self._settle_result_defaults,
                self._settle_take_transition,
                self._renew_leases,
                self._keep_presence,
                self._poll_once,
                self._recover_abandoned,
            )
            for chore in chores:
                try:
                    chore()
                except Exception:
                    logger.warning("%s failed; retrying", chore.__name__.strip("_"), exc_info=True)
            if self._wake.wait(self._poll_seconds):
                # Woken (a run readied, an execution ended): let the runs readied meanwhile join one poll. One
                # poll per wake was 1.1 of a human step's Prefect calls; the wait costs each run at most this.
                stop.wait(WAKE_GATHER_SECONDS)
            self._wake.clear()

    def _settle_result_defaults(self) -> None:
        """Once per worker (retried while Prefect is unreachable): spare each execution the storage lookup."""
        if self._result_defaults_settled:
            return
        settled = with_result_defaults(self._deployments, self._client)
        # Last: every with_options makes the flow's version again.
        self._deployments = {deployment_id: _without_version(flow) for deployment_id, flow in settled.items()}
        self._result_defaults_settled = True

    def _settle_take_transition(self) -> None:
        """Once per worker (retried while Prefect is unreachable): may takes go straight to Running?"""
        if self._takes_to_running is not None or not self._deployments:
            return
        any_deployment = next(iter(self._deployments))
        self._takes_to_running = server_refuses_running_takes_of_cancelled_runs(self._client, any_deployment)

    def _renew_leases(self) -> None:
        """Keep this worker's leases alive, well before they would expire."""
        if time.monotonic() - self._last_renewal < self._lease_seconds / 3:
            return
        with self._lock:
            executing = [str(run_id) for run_id in self._in_flight]
        with session_scope() as session:
            run_leases.renew(
                session, worker_id=self.worker_id, flow_run_ids=executing, now=utcnow(), seconds=self._lease_seconds
            )
        self._last_renewal = time.monotonic()

    def _keep_presence(self) -> None:
        """Renew this worker's presence (as long as its leases) and read which workers are alive now."""
        if time.monotonic() - self._last_presence < min(PRESENCE_SECONDS, self._lease_seconds / 3):
            return
        now = utcnow()
        with session_scope() as session:
            worker_presence.announce(session, worker_id=self.worker_id, now=now, seconds=self._lease_seconds)
            live = worker_presence.live_workers(session, now=now)
        if live != self._live:
            logger.info("live workers: %s", ", ".join(live) or "none")
        self._live = live
        self._last_presence = time.monotonic()

    def _withdraw_presence(self) -> None:
        try:
            with session_scope() as session:
                worker_presence.withdraw(session, worker_id=self.worker_id)
        except Exception:  # the row expires with its lease time anyway
            logger.warning("withdrawing the presence of worker %s failed", self.worker_id, exc_info=True)

    def _recover_abandoned(self) -> None:
        """Hand back runs whose worker died; a few times per lease period is enough."""
        if time.monotonic() - self._last_scan < self._lease_seconds / 2:
            return
        with self._lock:
            executing = {str(run_id) for run_id in self._in_flight}
        found = recover_abandoned_runs(
            deployment_ids=self._deployments,
            executing=executing,
            worker_id=self.worker_id,
            now=utcnow(),
            lease_seconds=self._lease_seconds,
            max_takes=self._max_takes,
        )
        self._last_scan = time.monotonic()
        if found.rescheduled:
            self._wake.set()

    def _free_slots(self) -> int:
        with self._lock:
            return self._concurrency - len(self._in_flight)

    def _poll_once(self) -> None:
        if self._free_slots() <= 0:
            return
        client = self._client
        # At most one per slot (Prefect sends the earliest first; runs of ours awaiting a retry may be among
        # them): with thousands scheduled, reading them all on every poll cut starts from ~10/s to ~1/s.
        live = self._live
        runs = client.get_scheduled_flow_runs_for_deployments(
            deployment_ids=list(self._deployments),
            scheduled_before=datetime.now(UTC) + timedelta(seconds=1),
            # A slot's worth per live worker: about one in as many is this worker's share.
            limit=self._concurrency * max(1, len(live)),
        )
        # Read once per poll: the check at start may settle on another thread meanwhile.
        to_running = bool(self._takes_to_running)
        for run in runs:
            share = self._claim(run)
            if share is Claim.LEAVE:
                continue  # another worker's to take (its share, or past the grace the next one's)
            with self._lock:
                if len(self._in_flight) >= self._concurrency:
                    return
                if run.id in self._in_flight:
                    continue
                self._in_flight.add(run.id)
            flow = self._deployments[run.deployment_id]
            if to_running:
                # Taken on the pool thread: taken one after another here, each take (a state change and a lease)
                # held the next poll back, and under load a resumed run waited 2.2 s (p50) to be taken. A late
                # take is safe: the server refuses Running to a run that was taken and suspended meanwhile.
                self._pool.submit(self._take_and_execute, run, flow)
                continue
            self._log_take_over(run, share)
            if self._take(client, run, to_running=False):
                # Through Pending the take stays right after the poll: Prefect accepts Pending for a suspended run.
                self._pool.submit(self._execute, run, flow)
            else:
                with self._lock:
                    self._in_flight.discard(run.id)

    def _take_and_execute(self, run: FlowRun, flow: Flow) -> None:
        """Take the run straight to Running on this pool thread, then execute it."""
        # Asked again: on a loaded machine the pool thread starts up to 1 s after the poll, and meanwhile the run
        # may have passed its grace and become the next worker's, which would then race this take.
        share = self._claim(run)
        if share is Claim.LEAVE:
            with self._lock:
                self._in_flight.discard(run.id)
            return
        self._log_take_over(run, share)
        try:
            taken = self._take(SyncClientContext.get().client, run, to_running=True)
        except Exception:
            logger.warning("taking flow run %s failed; it stays for a later poll", run.id, exc_info=True)
            taken = False
        if not taken:
            with self._lock:
                self._in_flight.discard(run.id)
            return
        self._execute(run, flow)

    def _claim(self, run: FlowRun) -> Claim:
        return claim(run.id, _scheduled_time(run), worker_id=self.worker_id, live=self._live, now=datetime.now(UTC))

    def _log_take_over(self, run: FlowRun, share: Claim) -> None:
        if share is Claim.OVERDUE:
            # Seldom, unless a worker is saturated, stuck or dead: the line says which runs it left.
            logger.info("%s: flow run %s", TAKE_OVER, run.id)

    def _take(self, client, run: FlowRun, *, to_running: bool) -> bool:
        """Move the run out of Scheduled and lease it; False if another worker took it or it went elsewhere."""
        flow_run_id = run.id
        if to_running:
            # Refused (another worker won, or the run was cancelled) or told to wait: left for a later poll.
            result = client.set_flow_run_state(flow_run_id, Running())
            if result.status != SetStateStatus.ACCEPT or result.state is None:
                logger.info("%s: flow run %s (%s)", TAKE_REFUSED, flow_run_id, result.details.reason or result.status)
                return False
            state = result.state
        else:
            try:
                state = propose_state_sync(client, Pending(), flow_run_id=flow_run_id)
            except Abort as exc:
                logger.info("%s: flow run %s (%s)", TAKE_REFUSED, flow_run_id, exc)
                return False
            if not state.is_pending():
                return False
        # The polled run with its new state is the run as the server holds it: executing needs no read of it.
        run.state, run.state_id, run.state_type, run.state_name = state, state.id, state.type, state.name
        try:
            with session_scope() as session:
                run_leases.hold(
                    session,
                    flow_run_id=str(flow_run_id),
                    worker_id=self.worker_id,
                    now=utcnow(),
                    seconds=self._lease_seconds,
                )
        except Exception:
            logger.warning("leasing flow run %s failed; putting it back", flow_run_id, exc_info=True)
            client.set_flow_run_state(flow_run_id, Scheduled(), force=True)
            return False
        return True

    def _execute(self, run: FlowRun, flow: Flow) -> None:
        flow_run_id = run.id
        suspended = False
        try:
            # The take's own state says whether the engine's Running is already the server's.
            taken_to_running = run.state is not None and run.state.is_running()
            with SyncClientContext.get().client.executing(run, taken_to_running=taken_to_running):
                run_flow(flow, flow_run=run, return_type="state")
        except Pause:
            logger.debug("flow run %s suspended", flow_run_id)
            suspended = True
        except Abort:
            logger.info("flow run %s aborted by the orchestrator", flow_run_id)
        except BaseException:
            logger.exception("flow run %s raised", flow_run_id)
        finally:
            self._drop_lease(flow_run_id)
            # After the lease is dropped (a resume held back meanwhile is then in the outbox to find), and before
            # the slot is freed: the delivery may wait on this thread, which no new run should be queued behind.
            if suspended:
                self._after_suspension(run)
            with self._lock:
                self._in_flight.discard(flow_run_id)
            self._wake.set()

    def _after_suspension(self, run: FlowRun) -> None:
        try:
            self._on_suspended(run)
        except Exception:  # what waited for the suspension is retried by the dispatcher anyway
            logger.warning("after flow run %s suspended: %s failed", run.id, self._on_suspended, exc_info=True)

    def _drop_lease(self, flow_run_id: UUID) -> None:
        try:
            with session_scope() as session:
                run_leases.release(session, flow_run_id=str(flow_run_id), worker_id=self.worker_id)
        except Exception:
            logger.warning("dropping the lease of flow run %s failed", flow_run_id, exc_info=True)
