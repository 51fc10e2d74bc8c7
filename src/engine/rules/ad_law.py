"""广告法极限词: find every banned absolute term in customer-facing text, and where it is."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d*\])*)")


@dataclass(frozen=True)
class TermHit:
    """One occurrence of a banned term: the field, the term and its character index."""

    field: str
    term: str
    position: int

    @property
    def message(self) -> str:
        """Describe the hit in one sentence."""
        return f"{self.field} contains banned term '{self.term}' at {self.position}"


def find_banned_terms(texts: Mapping[str, str | Sequence[str]], *, banned: Sequence[str]) -> list[TermHit]:
    """Return every occurrence of every banned term, ordered by field then position."""
    patterns = [(term, _pattern(term)) for term in banned]
    hits: list[TermHit] = []
    for field, text in _flatten(texts):
        found = [
            (match.start(), rank, TermHit(field=field, term=term, position=match.start()))
            for rank, (term, pattern) in enumerate(patterns)
            for match in pattern.finditer(text)
        ]
        hits.extend(hit for _, _, hit in sorted(found, key=lambda item: item[:2]))
    return hits


def scan_form_text(data: Mapping[str, Any], *, fields: Sequence[str], banned: Sequence[str]) -> list[TermHit]:
    """Return the banned-term hits in the named customer-facing fields of a form's data.

    A field is a dotted path such as ``title``, ``selling_points``, ``selling_points[1]`` or
    ``campaigns.theme``; lists met on the way are expanded item by item (``campaigns[0].theme``),
    and a path ending on an object or list scans every string inside it.
    """
    texts: dict[str, str] = {}
    for spec in fields:
        texts.update(_walk(data, _parse(spec), ""))
    return find_banned_terms(texts, banned=banned)


def _pattern(term: str) -> re.Pattern[str]:
    if not term:
        raise ValueError("a banned term must not be empty")
    # The lookahead makes matches overlap, so "最最" reports 最 twice.
    flags = re.IGNORECASE | re.ASCII if term.isascii() else 0
    return re.compile(f"(?={re.escape(term)})", flags)


def _flatten(texts: Mapping[str, str | Sequence[str]]) -> Iterator[tuple[str, str]]:
    for field, value in texts.items():
        if isinstance(value, str):
            yield field, value
        elif value is not None:
            for index, item in enumerate(value):
                yield f"{field}[{index}]", item


def _parse(spec: str) -> list[str | int | None]:
    steps: list[str | int | None] = []
    for segment in spec.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise ValueError(f"malformed field path {spec!r}")
        steps.append(match.group(1))
        # An explicit [n] picks one item; an empty [] is the same as expanding the list.
        steps.extend(int(index) if index else None for index in re.findall(r"\[(\d*)\]", match.group(2)))
    return steps


def _walk(value: Any, steps: list[str | int | None], path: str) -> Iterator[tuple[str, str]]:
    if not steps:
        yield from _strings(value, path)
    elif isinstance(steps[0], int):
        if isinstance(value, Sequence) and not isinstance(value, str) and steps[0] < len(value):
            yield from _walk(value[steps[0]], steps[1:], f"{path}[{steps[0]}]")
    elif isinstance(value, Sequence) and not isinstance(value, str):
        rest = steps[1:] if steps[0] is None else steps
        for index, item in enumerate(value):
            yield from _walk(item, rest, f"{path}[{index}]")
    elif isinstance(value, Mapping) and steps[0] is not None and steps[0] in value:
        yield from _walk(value[steps[0]], steps[1:], f"{path}.{steps[0]}" if path else steps[0])


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, Sequence):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
