"""Say why the engine refused an action, in the page's language; the engine's English sentence is the fallback."""

from __future__ import annotations

from typing import Any

from ecomflow.api.web.i18n import Translator
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import AlreadyClaimed, EcomflowError, IllegalTransition, ValidationFailed


def problem_sentence(problem: FieldProblem, t: Translator, **values: Any) -> str:
    """Say what is wrong with one field of an action (assign, delegate, bulk, comment)."""
    return t.get(f"problem.{problem.field}.{problem.rule}", problem.message, **values)


def refusal_text(error: EcomflowError, t: Translator, **values: Any) -> str:
    """Say why an action was refused; values fill in what the user typed (user, reason)."""
    if isinstance(error, ValidationFailed) and error.problems:
        return t("value.separator").join(problem_sentence(p, t, **values) for p in error.problems)
    if isinstance(error, AlreadyClaimed):
        return t("refused.AlreadyClaimed", assignee=error.about.get("assignee") or "?")
    if isinstance(error, IllegalTransition):
        if error.about.get("state") == "open" and error.about.get("action") == "complete":
            return t("refused.claim_first")
        state = error.about.get("state", "")
        return t("refused.IllegalTransition", state=t.get(f"state.{state}", state))
    for kind in type(error).__mro__:
        if kind is EcomflowError or not issubclass(kind, EcomflowError):
            break
        text = t.get(f"refused.{kind.__name__}", "")
        if text:
            return text
    return error.detail
