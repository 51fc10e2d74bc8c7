"""`ecomflow up`: every part of the system on one laptop, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import signal
import threading

import typer

from ecomflow.definition_commands import store_definition_versions
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.migrate import upgrade_to_head
from ecomflow.services import Service, api_server, flow_worker, prefect_server


def run_all() -> int:
    """Migrate and run the Prefect server, API and worker until Ctrl-C; return the exit code."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    upgrade_to_head()
    store_definition_versions()
    env = {
        "ECOMFLOW_DATA_DIR": str(settings.data_dir.resolve()),
        "ECOMFLOW_DATABASE_URL": settings.resolved_database_url,
    }
    services: list[Service] = []
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if settings.prefect_api_url is None:
            server = prefect_server(settings, log_dir=log_dir)
            services.append(server)
            server.start()
            typer.echo("starting the Prefect server …")
            server.wait_healthy(timeout=120)
        api = api_server(settings, log_dir=log_dir, env=env)
        worker = flow_worker(settings, log_dir=log_dir, env=env)
        services += [api, worker]
        api.start()
        worker.start()
        api.wait_healthy(timeout=60)
        typer.echo(
            "\necomflow is up\n"
            f"  API        http://{settings.api_host}:{settings.api_port}  (docs: /docs)\n"
            f"  Prefect UI {settings.resolved_prefect_ui_url}\n"
            f"  database   {settings.resolved_database_url}\n"
            f"  logs       {log_dir.resolve()}\n"
            "Ctrl-C stops everything."
        )
        while not stop.wait(1):
            dead = [s for s in services if not s.running()]
            if dead:
                typer.echo(
                    f"{dead[0].name} exited (code {dead[0].process.returncode}); stopping. See {dead[0].log_path}",
                    err=True,
                )
                return 1
        return 0
    finally:
        for service in reversed(services):
            service.stop()
        typer.echo("stopped.")
