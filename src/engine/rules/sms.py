"""SMS copy rules: a length limit and a mandatory opt-out text."""

from __future__ import annotations


def check_sms(text: str, *, max_chars: int, opt_out: str) -> list[str]:
    """Return the SMS rules the text breaks; an empty list when it is fine."""
    problems = []
    # Python counts characters, so a CJK character is 1 here, as carriers count a UCS-2 SMS.
    if len(text) > max_chars:
        problems.append(f"SMS is {len(text)} characters; the limit is {max_chars}")
    if opt_out not in text:
        problems.append(f"SMS must carry the opt-out text '{opt_out}'")
    return problems
