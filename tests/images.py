"""Real image files made by the tests with Pillow: product shots, banners, damaged files and an image bomb."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageDraw


def picture(
    width: int = 800,
    height: int = 800,
    *,
    fmt: str = "JPEG",
    background: tuple[int, int, int] = (255, 255, 255),
    product: tuple[int, int, int] = (200, 40, 40),
) -> bytes:
    """Return an image: a product (a coloured block) in the middle of a background, white by default (白底图)."""
    image = Image.new("RGB", (width, height), background)
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=product)
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def noisy_jpeg(width: int, height: int, *, quality: int = 95, seed: int = 1) -> bytes:
    """Return a JPEG of random noise: it barely compresses, so a few megapixels make megabytes."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """Return a tiny PNG whose header declares huge dimensions (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """Return the first part of a file, as an upload cut off mid-way would leave it."""
    return data[: int(len(data) * keep)]


def pdf(text: str = "design") -> bytes:
    """Return a tiny PDF file (a design source the design steps take)."""
    return b"%PDF-1.4\n% " + text.encode() + b"\n1 0 obj<</Type/Catalog>>endobj\n%%EOF\n"
