"""Form fields that hold uploaded files: `file` and `image`, one file or a list, compiled to attrs and JSON Schema.

In flows.yaml (sizes in bytes, or "3MB" / "500KB" with 1 MB = 1024 KB):

    main_images:
      type: image
      min_files: 5              # min_files / max_files make the field a list of files
      max_files: 10
      accept: [image/jpeg, image/png]
      max_size: 3MB
      min_width: 800
      min_height: 800
      square: true
      white_background: {level: 235, share: 0.98}   # the first file: its border near white (白底图)
    image:
      type: image
      size_by: {field: placement, sizes: {home_banner: [1920, 600]}}   # a sibling enum picks the exact size

The platforms' parameters live once under flows.yaml `rules.images` and reach fields through YAML
anchors (`<<: *main_image`). In the JSON Schema a file is an attachment id (`format: uuid`) with
`contentMediaType` and `x-attachment` stating every rule, so a client knows what to upload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ecomflow.engine.files.content_types import BY_MEDIA_TYPE, IMAGE_TYPES, common_media_type

FILE_KINDS = ("file", "image")
FILE_KEYS = frozenset({"accept", "max_size", "min_files", "max_files"})
IMAGE_KEYS = FILE_KEYS | {"min_width", "min_height", "square", "white_background", "size_by"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB)\s*$", re.IGNORECASE)
_FACTORS = {"kb": 1024, "mb": 1024 * 1024}


def parse_size(value: Any) -> int | None:
    """Return a size in bytes from an integer or "3MB" / "500KB", or None when it is neither."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return int(float(match.group(1)) * _FACTORS[match.group(2).lower()]) or None


def compile_file_attrs(kind: str, raw: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """Read a file or image field's rules into attrs, appending a located sentence per problem."""
    allowed = IMAGE_TYPES if kind == "image" else tuple(BY_MEDIA_TYPE)
    accept = raw.get("accept", list(allowed))
    attrs: dict[str, Any] = {"accept": allowed, "multiple": "min_files" in raw or "max_files" in raw}
    if not isinstance(accept, list) or not accept or not all(isinstance(t, str) for t in accept):
        problems.append(f"{where}.accept: expected a non-empty list of media types")
    elif unknown := [t for t in accept if t not in allowed]:
        problems.append(
            f"{where}.accept: {', '.join(unknown)} not accepted for {kind} fields (known: {', '.join(allowed)})"
        )
    else:
        attrs["accept"] = tuple(dict.fromkeys(accept))
    if "max_size" in raw:
        size = parse_size(raw["max_size"])
        if size is None:
            problems.append(
                f"{where}.max_size: expected a positive byte count or a size like 3MB, got {raw['max_size']!r}"
            )
        attrs["max_size"] = size
    for key in ("min_files", "max_files", "min_width", "min_height"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "min_files" else 1):
                problems.append(
                    f"{where}.{key}: expected a {'non-negative' if key == 'min_files' else 'positive'} integer"
                )
            attrs[key] = value
    low, high = attrs.get("min_files"), attrs.get("max_files")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        problems.append(f"{where}: min_files ({low}) is greater than max_files ({high})")
    if "square" in raw:
        if not isinstance(raw["square"], bool):
            problems.append(f"{where}.square: expected true or false")
        attrs["square"] = raw["square"] is True
    if "white_background" in raw:
        attrs["white_background"] = _white_background(raw["white_background"], f"{where}.white_background", problems)
    if "size_by" in raw:
        attrs["size_by"] = _size_by(raw["size_by"], f"{where}.size_by", problems)
    return attrs


def _white_background(raw: Any, where: str, problems: list[str]) -> dict[str, Any]:
    level, share = (raw.get("level"), raw.get("share")) if isinstance(raw, Mapping) else (None, None)
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 255:
        problems.append(f"{where}.level: expected the lightness (0-255) every channel of a white pixel reaches")
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 < share <= 1:
        problems.append(f"{where}.share: expected the share (0-1] of border pixels that must be white")
    return {"level": level, "share": share}


def _size_by(raw: Any, where: str, problems: list[str]) -> dict[str, Any]:
    field, sizes = (raw.get("field"), raw.get("sizes")) if isinstance(raw, Mapping) else (None, None)
    if not isinstance(field, str) or not field:
        problems.append(f"{where}.field: expected the name of a sibling enum field (the placement)")
    table: dict[str, tuple[int, int]] = {}
    if not isinstance(sizes, Mapping) or not sizes:
        problems.append(f"{where}.sizes: expected a mapping of placement to [width, height]")
    else:
        for name, size in sizes.items():
            if not (isinstance(size, list) and len(size) == 2 and all(_is_positive(v) for v in size)):
                problems.append(f"{where}.sizes.{name}: expected [width, height] in pixels")
                continue
            table[str(name)] = (size[0], size[1])
    return {"field": field, "sizes": table}


def _is_positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_size_by(fields: tuple[Any, ...], where: str, problems: list[str]) -> None:
    """Check that each size_by names a sibling enum field every value of which has a size."""
    by_name = {spec.name: spec for spec in fields}
    for spec in fields:
        size_by = spec.attrs.get("size_by") if spec.type == "image" else None
        if not size_by or not size_by.get("field"):
            continue
        sibling = by_name.get(size_by["field"])
        if sibling is None or sibling.type != "enum":
            problems.append(f"{where}.{spec.name}.size_by.field: {size_by['field']!r} is not an enum field beside it")
        elif missing := [v for v in sibling.attrs["values"] if v not in size_by["sizes"]]:
            problems.append(f"{where}.{spec.name}.size_by.sizes: no size for {', '.join(missing)}")


def file_schema(kind: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON Schema of a file field: an attachment id, or a list of them."""
    rules: dict[str, Any] = {"kind": kind, "accept": list(attrs["accept"])}
    for key in ("max_size", "min_width", "min_height", "square", "white_background"):
        if attrs.get(key) is not None:
            rules[key] = attrs[key]
    if attrs.get("size_by"):
        sizes = {name: list(size) for name, size in attrs["size_by"]["sizes"].items()}
        rules["size_by"] = {"field": attrs["size_by"]["field"], "sizes": sizes}
    item = {
        "type": "string",
        "format": "uuid",
        "contentMediaType": common_media_type(tuple(attrs["accept"])),
        "description": "the id of an attachment uploaded with POST /attachments",
        "x-attachment": rules,
    }
    if not attrs["multiple"]:
        return item
    schema: dict[str, Any] = {"type": "array", "items": item, "uniqueItems": True}
    if "min_files" in attrs:
        schema["minItems"] = attrs["min_files"]
    if "max_files" in attrs:
        schema["maxItems"] = attrs["max_files"]
    return schema
