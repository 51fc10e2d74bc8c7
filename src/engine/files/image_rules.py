"""The checks a field applies to a file it is given: type, size, and for images the platforms' rules.

Pure functions over what was measured at upload (FileFacts), so a completion never decodes an image again.
Each broken rule is one FieldProblem naming the field path, the file and the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.files.content_types import describe
from ecomflow.engine.files.incoming import describe_size


@dataclass(frozen=True)
class FileFacts:
    """What is known of an uploaded file without its bytes."""

    filename: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    border_histogram: Sequence[int] = ()


def white_share(histogram: Sequence[int], level: int) -> float:
    """Return the share of border pixels whose every channel is at least level."""
    total = sum(histogram)
    return sum(histogram[level:]) / total if total else 0.0


def check_file(
    facts: FileFacts,
    attrs: Mapping[str, Any],
    *,
    kind: str,
    path: str,
    first: bool,
    placement: str | None = None,
) -> list[FieldProblem]:
    """Return every rule of the field the file breaks; `first` is the field's first file, `placement` a banner's."""
    named = f"{path} ({facts.filename})"
    accept = attrs.get("accept", ())
    if facts.content_type not in accept:
        message = f"{named} is a {describe(facts.content_type)}; this field takes {', '.join(accept)}"
        return [FieldProblem(path, "content_type", message)]
    problems = []
    max_size = attrs.get("max_size")
    if max_size is not None and facts.size > max_size:
        message = f"{named} is {describe_size(facts.size)}; at most {describe_size(max_size)} is allowed"
        problems.append(FieldProblem(path, "max_size", message))
    if kind == "image":
        problems += _image_problems(facts, attrs, path=path, named=named, first=first, placement=placement)
    return problems


def _image_problems(
    facts: FileFacts, attrs: Mapping[str, Any], *, path: str, named: str, first: bool, placement: str | None
) -> list[FieldProblem]:
    width, height = facts.width, facts.height
    if width is None or height is None:
        return [FieldProblem(path, "image", f"{named} is not an image")]
    shown = f"{named} is {width}×{height} pixels"
    problems = []
    if width < attrs.get("min_width", 0):
        problems.append(FieldProblem(path, "min_width", f"{shown}; it must be at least {attrs['min_width']} wide"))
    if height < attrs.get("min_height", 0):
        problems.append(FieldProblem(path, "min_height", f"{shown}; it must be at least {attrs['min_height']} high"))
    if attrs.get("square") and width != height:
        problems.append(FieldProblem(path, "square", f"{shown}; it must be square"))
    white = attrs.get("white_background")
    if white and first:
        share = white_share(facts.border_histogram, white["level"])
        if share < white["share"]:
            message = (
                f"{named} needs a white background (白底图): {share:.0%} of its border is near white "
                f"(every channel ≥ {white['level']}), at least {white['share']:.0%} must be"
            )
            problems.append(FieldProblem(path, "white_background", message))
    size_by = attrs.get("size_by")
    if size_by and placement in size_by["sizes"]:
        wanted = tuple(size_by["sizes"][placement])
        if (width, height) != wanted:
            message = f"{shown}; a {placement} image must be {wanted[0]}×{wanted[1]}"
            problems.append(FieldProblem(path, "placement_size", message))
    return problems
