"""`ecomflow up` brings the whole system up on the embedded default and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, is_up, processes_using, wait_until

pytestmark = pytest.mark.e2e


class TestUp:
    def test_up_serves_api_and_prefect_ui_and_ctrl_c_stops_everything(self) -> None:
        data_dir = tempfile.mkdtemp(prefix="ecomflow-up-")
        api_port, prefect_port = free_port(), free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("ECOMFLOW_", "PREFECT_"))}
        env.update(
            ECOMFLOW_DATA_DIR=data_dir,
            ECOMFLOW_API_PORT=str(api_port),
            ECOMFLOW_PREFECT_PORT=str(prefect_port),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
        )
        up = subprocess.Popen(
            [sys.executable, "-m", "ecomflow.cli", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: is_up(f"http://127.0.0.1:{api_port}"), timeout=180, what="the API of ecomflow up")
            assert httpx.get(f"http://127.0.0.1:{prefect_port}/", timeout=10).status_code == 200  # the Prefect UI
            assert len(processes_using(data_dir)) >= 3  # Prefect server, API, worker
            up.send_signal(signal.SIGINT)
            output, _ = up.communicate(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
        assert up.returncode == 0, output
        assert f"http://127.0.0.1:{api_port}" in output and f"http://127.0.0.1:{prefect_port}" in output
        assert "stopped." in output
        assert processes_using(data_dir) == []
        assert (Path(data_dir) / "ecomflow.db").exists()
