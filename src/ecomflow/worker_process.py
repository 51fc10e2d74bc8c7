"""The worker process: flow runs, outbox delivery and the sweeper, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
import time

from prefect.client.schemas.objects import FlowRun

from ecomflow.engine.config import get_settings
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.events.dispatcher import deliver_resumes_that_waited, run_dispatcher
from ecomflow.engine.orchestrator.deployments import register_deployments
from ecomflow.engine.orchestrator.wakeups import start_wakeups
from ecomflow.engine.orchestrator.worker import FlowWorker
from ecomflow.engine.sla.sweeper import run_sweeper
from ecomflow.flows import implemented_flows

logger = logging.getLogger("ecomflow.worker")


def _register_until_done(stop: threading.Event) -> dict:
    """Register deployments, waiting for the Prefect server if it is not up yet."""
    while not stop.is_set():
        try:
            return register_deployments(implemented_flows(), get_definitions())
        except Exception as exc:
            logger.warning("registering deployments failed (%s); retrying", exc)
            stop.wait(2)
    return {}


def _deliver_resumes_that_waited(run: FlowRun) -> None:
    """As a run suspends, deliver at once the resumes its instance's people sent before it did."""
    instance_id = (run.parameters or {}).get("instance_id")
    if instance_id:
        deliver_resumes_that_waited(instance_id)


def run_worker() -> None:
    """Run until a stop signal: the flow worker in this thread, dispatcher and sweeper beside it."""
    # force: importing Prefect has already configured the root logger.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    # One INFO line per HTTP request to Prefect drowned the worker log (3 of 4 lines); failures still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    deployments = _register_until_done(stop)
    worker = FlowWorker(
        deployments,
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.worker_poll_seconds,
        lease_seconds=settings.run_lease_seconds,
        max_takes=settings.max_run_takes,
        retries=settings.flow_retries,
        retry_delay_seconds=settings.flow_retry_delay_seconds,
        on_suspended=_deliver_resumes_that_waited,
    )
    helpers = [
        threading.Thread(
            target=run_dispatcher, args=(stop,), kwargs={"on_delivered": worker.poke}, name="dispatcher", daemon=True
        ),
        threading.Thread(target=run_sweeper, args=(stop,), name="sweeper", daemon=True),
    ]
    for thread in helpers:
        thread.start()
    start_wakeups(deployments, worker.poke)
    logger.info("worker ready: %d deployment(s)", len(deployments))
    started = time.monotonic()
    worker.run_until(stop)
    for thread in helpers:
        thread.join(timeout=10)
    logger.info("worker stopped after %.0fs", time.monotonic() - started)
