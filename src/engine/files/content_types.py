"""Tell a file's type from its first bytes, never from its name: the types ecomflow accepts and their signatures."""

from __future__ import annotations

from dataclasses import dataclass

# Enough bytes to recognise every signature below.
HEAD_BYTES = 32


@dataclass(frozen=True)
class ContentType:
    """A file type ecomflow accepts: its media type, a name for people, and whether Pillow may decode it."""

    media_type: str
    name: str
    image: bool


JPEG = ContentType("image/jpeg", "JPEG image", image=True)
PNG = ContentType("image/png", "PNG image", image=True)
GIF = ContentType("image/gif", "GIF image", image=True)
WEBP = ContentType("image/webp", "WebP image", image=True)
PDF = ContentType("application/pdf", "PDF document", image=False)
PSD = ContentType("image/vnd.adobe.photoshop", "Photoshop document", image=False)
ZIP = ContentType("application/zip", "ZIP archive", image=False)
MP4 = ContentType("video/mp4", "MP4 video", image=False)

KNOWN = (JPEG, PNG, GIF, WEBP, PDF, PSD, ZIP, MP4)
BY_MEDIA_TYPE = {kind.media_type: kind for kind in KNOWN}
IMAGE_TYPES = tuple(kind.media_type for kind in KNOWN if kind.image)


def sniff(head: bytes) -> ContentType | None:
    """Return the type whose signature the bytes start with, or None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"8BPS"):
        return PSD
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ZIP
    if head[4:8] == b"ftyp":
        return MP4
    return None


def describe(media_type: str) -> str:
    """Name a media type for people: "JPEG image (image/jpeg)"."""
    kind = BY_MEDIA_TYPE.get(media_type)
    return f"{kind.name} ({media_type})" if kind else media_type


def common_media_type(media_types: tuple[str, ...]) -> str:
    """Return one media type covering all: the type itself, `image/*` for several images, else `*/*`."""
    if len(media_types) == 1:
        return media_types[0]
    tops = {media_type.split("/", 1)[0] for media_type in media_types}
    return f"{tops.pop()}/*" if len(tops) == 1 else "*/*"
