"""flows.yaml changes while a case runs: the case finishes on its version, a new case follows the new one.

The stack's API and worker are restarted on a copy of flows.yaml (ECOMFLOW_DEFINITIONS_PATH), as a
deploy would: version 1 has no deduction approval; version 2 gains that step (the flow asks it for
a damaged parcel) and a required field on the inspection. `ecomflow check` says what the running
case would meet, `ecomflow migrate` stores version 2, and the API and worker restart on it.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from ecomflow.engine.db.models import DefinitionVersion
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.services import Service
from tests.e2e.conftest import COMMON_ENV, LOG_DIR, Stack, Staff, api_service, prefect_api, wait_until, worker_service
from tests.factories import return_params

pytestmark = pytest.mark.e2e

PROCESS = "returns_exchange"
PHOTOS = {"type": "boolean", "required": True, "label": {"zh": "已拍照存档", "en": "Photos filed"}}


def version_1() -> dict[str, Any]:
    """The shipped flows.yaml without the deduction approval (its cases go the undamaged way here)."""
    raw = copy.deepcopy(dict(get_definitions().source))
    steps = raw["processes"][PROCESS]["steps"]
    steps[:] = [step for step in steps if step["key"] != "deduction_approval"]
    return raw


def version_2() -> dict[str, Any]:
    """Version 1 plus the deduction approval (the shipped step) and a required field on the inspection."""
    raw = copy.deepcopy(dict(get_definitions().source))
    inspect = next(step for step in raw["processes"][PROCESS]["steps"] if step["key"] == "inspect")
    inspect["form"]["fields"]["photos_filed"] = PHOTOS
    return raw


def write(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def restart_on(stack: Stack, env: dict[str, str]) -> None:
    """Stop the API and the worker and start them again with this environment, as a deploy would."""
    stack.worker.stop()
    stack.api.stop()
    stack.api = Service(
        name="api", argv=stack.api.argv, env=env, health_url=stack.api.health_url, log_path=LOG_DIR / "api.log"
    )
    stack.worker = Service(name="worker", argv=stack.worker.argv, env=env, log_path=LOG_DIR / "worker.log")
    stack.api.start()
    stack.worker.start()
    stack.api.wait_healthy(timeout=60)


def ecomflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecomflow.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def definitions_file(stack: Stack, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """Run the stack on a copy of flows.yaml (version 1) for this test; put it back on the shipped file after."""
    path = tmp_path / "flows.yaml"
    write(path, version_1())
    env = {**COMMON_ENV, "ECOMFLOW_DEFINITIONS_PATH": str(path)}
    restart_on(stack, env)
    try:
        yield path, env
    finally:
        stack.worker.stop()
        stack.api.stop()
        stack.api, stack.worker = api_service(), worker_service()
        stack.api.start()
        stack.worker.start()
        stack.api.wait_healthy(timeout=60)


def versions_stored() -> dict[int, str]:
    with session_scope() as session:
        rows = session.execute(
            select(DefinitionVersion.version, DefinitionVersion.text).where(DefinitionVersion.process_key == PROCESS)
        )
        return dict(rows.all())


def link_artifacts(flow_run_id: str) -> list[str]:
    response = prefect_api("POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    response.raise_for_status()
    return [artifact["data"] for artifact in response.json()]


class TestAChangedDefinition:
    def test_a_running_case_ends_on_its_version_while_a_new_case_follows_the_new_one(
        self, definitions_file: tuple[Path, dict[str, str]], stack: Stack, team: dict[str, Staff]
    ) -> None:
        path, env = definitions_file
        cs, warehouse, ops = team["cs"], team["warehouse"], team["ops"]

        old = cs.start_return(return_params(amount=100.0), business_key=f"VER-OLD-{uuid.uuid4().hex[:6]}")
        cs.do(cs.wait_for_task(old["id"], "cs_review")["id"], {"decision": "approve"})
        parcel = cs.wait_for_task(old["id"], "await_parcel")
        old_version = cs.instance(old["id"])["definition_version"]
        assert "deduction_approval" not in versions_stored()[old_version]
        # The run links to the instance page, so the Prefect UI leads there.
        flow_run_id = cs.instance(old["id"])["flow_run_id"]
        links = wait_until(lambda: link_artifacts(flow_run_id), timeout=30, what="the instance-page link artifact")
        assert any(f"/ui/instances/{old['id']}" in link for link in links)

        # flows.yaml gains a step and a required field; check says what the running case would meet, migrate stores it.
        write(path, version_2())
        checked = ecomflow(env, "check")
        assert checked.returncode == 0, checked.stderr
        assert f"{PROCESS}: 1 running instance(s) on version {old_version}" in checked.stdout
        assert "step inspect gains the required field photos_filed" in checked.stdout
        migrated = ecomflow(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        new_version = max(versions_stored())
        assert f"stored {PROCESS} definition version {new_version}" in migrated.stdout and new_version > old_version
        restart_on(stack, env)

        new = cs.start_return(return_params(amount=100.0), business_key=f"VER-NEW-{uuid.uuid4().hex[:6]}")
        assert cs.instance(new["id"])["definition_version"] == new_version
        assert cs.instance(old["id"])["definition_version"] == old_version

        # The old case: its inspection is asked and checked as version 1 says, without the new field.
        cs.do(parcel["id"], {"return_tracking_no": "SF1000000001", "carrier": "SF", "return_shipping_cost": 8})
        inspect = warehouse.wait_for_task(old["id"], "inspect")
        form = warehouse.get(f"/tasks/{inspect['id']}").json()["form"]
        assert "photos_filed" not in form["properties"]
        warehouse.do(inspect["id"], {"condition": "ok", "restock": "yes"})
        done = cs.wait_for_state(old["id"], "completed", timeout=90)
        assert done["result"]["outcome"] == "refunded" and done["definition_version"] == old_version

        # The new case meets version 2: the required field, then the new step.
        cs.do(cs.wait_for_task(new["id"], "cs_review")["id"], {"decision": "approve"})
        cs.do(
            cs.wait_for_task(new["id"], "await_parcel")["id"],
            {"return_tracking_no": "SF1000000002", "carrier": "SF", "return_shipping_cost": 8},
        )
        inspect = warehouse.wait_for_task(new["id"], "inspect")
        assert warehouse.post(f"/tasks/{inspect['id']}/claim").status_code == 200
        refused = warehouse.post(
            f"/tasks/{inspect['id']}/complete",
            json={"data": {"condition": "damaged", "restock": "no", "deduction": 20}},
        )
        assert refused.status_code == 422 and [f["field"] for f in refused.json()["fields"]] == ["photos_filed"]
        accepted = warehouse.post(
            f"/tasks/{inspect['id']}/complete",
            json={"data": {"condition": "damaged", "restock": "no", "deduction": 20, "photos_filed": True}},
        )
        assert accepted.status_code == 200, accepted.text
        approval = ops.wait_for_task(new["id"], "deduction_approval", timeout=90)
        ops.do(approval["id"], {"decision": "approve", "comment": "照片清楚"})
        done = cs.wait_for_state(new["id"], "completed", timeout=90)
        assert done["result"]["outcome"] == "refunded"

        # Each case's map is drawn from its own version.
        old_map = cs.get(f"/instances/{old['id']}/diagram.svg")
        new_map = ops.get(f"/instances/{new['id']}/diagram.svg")
        assert old_map.status_code == new_map.status_code == 200
        assert 'data-step="deduction_approval"' not in old_map.text
        assert 'data-step="deduction_approval" data-kind="approval" data-state="done"' in new_map.text
