"""Decode an uploaded image safely and measure what the image rules need: its size and its border's whiteness.

The pixel count is read from the header and refused above the limit before anything is decoded
(a "decompression bomb" declares huge dimensions in a few bytes). JPEGs decode at a reduced scale
(Pillow's draft mode): every byte is still read, so a truncated file is still caught, at a fraction of the cost.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed

# JPEGs decode at least this large: enough for a sharp thumbnail and a fair look at the border.
WORKING_SIZE = 640
# The border the white-background rule looks at: this share of the shorter side, at least one pixel.
BORDER_SHARE = 0.02
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class InspectedImage:
    """An image that decoded whole: its size as displayed, its border histogram, and a reduced copy for thumbnails."""

    width: int
    height: int
    border_histogram: list[int]
    working_copy: Image.Image

    @property
    def facts(self) -> dict[str, Any]:
        """Return what the rules check later, without the bytes: stored with the attachment."""
        return {"border_histogram": self.border_histogram}


def inspect_image(path: Path, *, filename: str, max_pixels: int) -> InspectedImage:
    """Decode the image at path; refuse (422 naming the file) a damaged, truncated or oversized one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = image.size
            if width * height > max_pixels:
                raise _refusal(
                    filename,
                    "pixels",
                    f"{filename} declares {width}×{height} pixels; images may have at most {max_pixels:,} pixels",
                )
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            if image.format == "JPEG":
                image.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
            image.load()
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        message = f"{filename} declares more pixels than images may have ({max_pixels:,})"
        raise _refusal(filename, "pixels", message) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        message = f"{filename} is a damaged or truncated image and cannot be read ({exc})"
        raise _refusal(filename, "image", message) from None
    if orientation in _ROTATED:
        width, height = height, width
    # Kept at the decoded size: resampling it here cost more than the decode (bench/uploads.py).
    working = _on_white(ImageOps.exif_transpose(image))
    return InspectedImage(width=width, height=height, border_histogram=border_histogram(working), working_copy=working)


def _on_white(image: Image.Image) -> Image.Image:
    """Return the image as RGB, transparent parts on white (as a shop page shows them)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def border_histogram(image: Image.Image) -> list[int]:
    """Count the border's pixels by their darkest channel (0-255): near white means every channel is high."""
    red, green, blue = image.split()
    darkest = ImageChops.darker(ImageChops.darker(red, green), blue)
    width, height = darkest.size
    band = max(1, round(min(width, height) * BORDER_SHARE))
    boxes = [
        (0, 0, width, band),
        (0, height - band, width, height),
        (0, band, band, height - band),
        (width - band, band, width, height - band),
    ]
    counts = [0] * 256
    for box in boxes:
        if box[2] > box[0] and box[3] > box[1]:
            for level, count in enumerate(darkest.crop(box).histogram()):
                counts[level] += count
    return counts


def _refusal(filename: str, rule: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, problems=[FieldProblem("file", rule, message)])
