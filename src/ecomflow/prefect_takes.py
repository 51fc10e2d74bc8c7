"""The embedded Prefect server's one orchestration rule of its own: a deployment's run may only be taken when waiting.

A worker takes a run by moving it out of Scheduled, and the transition must fail for every worker but
one, and for a run cancelled since it was polled. Prefect's own takers propose Pending for this
(PreventPendingTransitions refuses Pending from Pending, Running, Cancelling and Cancelled), then
Running: two state changes, each a transaction and an event on the server. Prefect 3.9.1 accepts
Running from any state but Cancelling, so ecomflow's worker could not take a run straight to Running
without reviving a run cancelled between its poll and its take. With this rule in the server's flow
policy it can: Running is refused from Running (another worker won), Cancelling and the terminal states,
for runs of a deployment, and from a suspension (it resumes through Scheduled). Runs enter Running only
from Scheduled, Pending and an in-place pause, as Prefect's engine, runners and workers move them anyway.

The worker checks the rule is there before it relies on it (orchestrator/take_check.py): on a server
without it (stock `prefect server start`, Prefect Cloud), takes stay Scheduled → Pending → Running.
"""

from __future__ import annotations

from typing import Any, ClassVar

import prefect.server.models  # noqa: F401 (first: Prefect 3.9.1's orchestration modules import each other in a circle)
from prefect.server.orchestration import dependencies
from prefect.server.orchestration.core_policy import CoreFlowPolicy, PreventPendingTransitions
from prefect.server.orchestration.policies import FlowRunOrchestrationPolicy
from prefect.server.orchestration.rules import FlowRunOrchestrationRule, OrchestrationContext
from prefect.server.schemas.states import TERMINAL_STATES, State, StateType


class RunOnlyFromWaiting(FlowRunOrchestrationRule):
    """Refuse Running to a deployment's run that is Running already, suspended, being cancelled, or ended.

    A suspended run (Paused with a reschedule) goes back to Running only through Scheduled ("Resuming"):
    a take polled before the run was taken, executed and suspended must not revive it. A pause that
    blocks in place (no reschedule) is still resumed straight to Running, as Prefect does.
    """

    FROM_STATES: ClassVar = {StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING, *TERMINAL_STATES}
    TO_STATES: ClassVar = {StateType.RUNNING}

    async def before_transition(
        self, initial_state: State | None, proposed_state: State | None, context: OrchestrationContext[Any, Any]
    ) -> None:
        if initial_state is None or proposed_state is None or context.run.deployment_id is None:
            return
        if initial_state.type == StateType.PAUSED and not initial_state.state_details.pause_reschedule:
            return
        await self.abort_transition(
            reason=f"This run is {initial_state.type.name}: only a waiting run can be taken to RUNNING."
        )


class EcomflowFlowPolicy(FlowRunOrchestrationPolicy):
    """Prefect's core flow policy with RunOnlyFromWaiting where Prefect guards its own takes."""

    @staticmethod
    def priority() -> list[Any]:
        rules = list(CoreFlowPolicy.priority())
        at = rules.index(PreventPendingTransitions)
        return [*rules[:at], RunOnlyFromWaiting, *rules[at:]]


async def _provide_policy() -> type[FlowRunOrchestrationPolicy]:
    return EcomflowFlowPolicy


def install() -> None:
    """Make EcomflowFlowPolicy the flow policy of the Prefect server started in this process."""
    # Prefect's own hook for replacing the flow policy (what its temporary_flow_policy sets).
    dependencies.ORCHESTRATION_DEPENDENCIES["flow_policy_provider"] = _provide_policy
