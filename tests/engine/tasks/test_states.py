"""The human-task state machine, walked over every (state, action) pair."""

from __future__ import annotations

import itertools

import pytest

from ecomflow.engine.errors import IllegalTransition
from ecomflow.engine.tasks.states import ACTIVE_STATES, TERMINAL_STATES, TRANSITIONS, TaskAction, TaskState, next_state

pytestmark = pytest.mark.db_independent

S, A = TaskState, TaskAction
# The machine as the design states it, written out independently of the module under test.
EXPECTED = {
    (S.OPEN, A.CLAIM): S.CLAIMED,
    (S.OPEN, A.ASSIGN): S.CLAIMED,
    (S.OPEN, A.CANCEL): S.CANCELLED,
    (S.OPEN, A.EXPIRE): S.EXPIRED,
    (S.CLAIMED, A.ASSIGN): S.CLAIMED,
    (S.CLAIMED, A.DELEGATE): S.CLAIMED,
    (S.CLAIMED, A.RELEASE): S.OPEN,
    (S.CLAIMED, A.COMPLETE): S.COMPLETED,
    (S.CLAIMED, A.CANCEL): S.CANCELLED,
    (S.CLAIMED, A.EXPIRE): S.EXPIRED,
}
ALL_PAIRS = list(itertools.product(TaskState, TaskAction))


class TestTransitions:
    def test_table_is_the_designed_machine(self) -> None:
        assert TRANSITIONS == EXPECTED

    def test_terminal_states_have_no_way_out(self) -> None:
        assert {state for state, _ in TRANSITIONS} == set(ACTIVE_STATES)
        assert not TERMINAL_STATES & ACTIVE_STATES
        assert set(TaskState) == TERMINAL_STATES | ACTIVE_STATES


class TestNextState:
    @pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=[f"{s.value}-{a.value}" for s, a in ALL_PAIRS])
    def test_every_state_action_pair(self, state: TaskState, action: TaskAction) -> None:
        if (state, action) in EXPECTED:
            assert next_state(state.value, action, task_id="t-1") is EXPECTED[(state, action)]
            return
        with pytest.raises(IllegalTransition) as refused:
            next_state(state.value, action, task_id="t-1")
        assert "t-1" in refused.value.detail
        assert state.value in refused.value.detail
        assert refused.value.about == {"task_id": "t-1", "state": state.value, "action": action.value}

    def test_completing_an_open_task_says_to_claim_first(self) -> None:
        with pytest.raises(IllegalTransition, match="claim it first"):
            next_state("open", TaskAction.COMPLETE, task_id="t-2")

    def test_unknown_state_is_refused(self) -> None:
        with pytest.raises(ValueError, match="is not a valid TaskState"):
            next_state("archived", TaskAction.CLAIM, task_id="t-3")
