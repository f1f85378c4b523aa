"""OpenAI ``image_url`` parts -> Anthropic image blocks, with the gateway's limits.

The CLI passes base64 image blocks of a stream-json user message to the API unchanged
(protocol reference §7.2), so that is the only form planned here: a data URL. Fetching
http(s) URLs and reading local files is I/O; the server does it first and hands the bytes
to `data_url` (ccserver/images.py), so every image reaches the plan as a data URL.

Checks, each an `InvalidRequestError` naming the part (``messages[i].content[j]``):

* the URL is a ``data:`` URL with ``;base64`` (anything else was not resolved);
* the base64 is strict: standard alphabet, correct padding, no whitespace;
* the decoded size is within the limit (checked on the encoded length first, so an
  oversize image is refused without decoding it);
* the bytes are PNG, JPEG, GIF or WebP by their magic bytes. The declared media type is
  not trusted: the sniffed one goes into the block (the CLI would correct it anyway).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import attrs

from .errors import InvalidRequestError

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "DEFAULT_MAX_IMAGE_BYTES",
    "ImageLimits",
    "check_image_count",
    "data_url",
    "image_block",
    "sniff_media_type",
]

#: 5 MiB decoded, the Anthropic API's own limit for a base64 image.
DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: Images per request; the API takes more, but each one costs upload and tokens.
DEFAULT_MAX_IMAGES = 20

# Magic numbers: PNG spec §5.2; JPEG SOI + first marker; GIF87a/89a; RIFF....WEBP.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
)
# RFC 2397: data:[<mediatype>][;parameter=value]*[;base64],<data>
_DATA_URL = re.compile(r"data:(?P<meta>[^,]*?)(?P<b64>;base64)?,(?P<data>.*)", re.S | re.I)
_B64_ALPHABET = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


@attrs.frozen(kw_only=True)
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_count: int = DEFAULT_MAX_IMAGES


def sniff_media_type(data: bytes) -> str | None:
    """The media type the bytes announce, or None if not PNG, JPEG, GIF or WebP."""
    for magic, offset, media_type in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if media_type == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return media_type
    return None


def _checked(data: bytes, param: str, limits: ImageLimits) -> str:
    if not data:
        raise InvalidRequestError("The image is empty", param=param, code="invalid_image")
    if len(data) > limits.max_bytes:
        raise _too_large(param, limits)
    media_type = sniff_media_type(data)
    if media_type is None:
        raise InvalidRequestError(
            "The image is not PNG, JPEG, GIF or WebP (checked by its first bytes)",
            param=param,
            code="invalid_image_format",
        )
    return media_type


def _too_large(param: str, limits: ImageLimits) -> InvalidRequestError:
    return InvalidRequestError(
        f"The image is larger than the limit of {limits.max_bytes} bytes",
        param=param,
        code="image_too_large",
    )


def data_url(data: bytes, *, param: str, limits: ImageLimits) -> str:
    """Fetched or read image bytes as a ``data:`` URL, after the size and format checks."""
    media_type = _checked(data, param, limits)
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def image_block(url: str, *, param: str, limits: ImageLimits) -> dict[str, Any]:
    """The Anthropic image block for a data URL (reference §6.1).

    Raises:
        InvalidRequestError: not a base64 data URL, bad base64, too large, or not an image
            format the API takes.
    """
    match = _DATA_URL.fullmatch(url.strip()) if url.lower().startswith("data:") else None
    if match is None:
        raise InvalidRequestError(
            "Only data: URLs can be sent as images here; http(s) URLs and file paths are "
            "resolved by the server before this point",
            param=param,
            code="unsupported_image_url",
        )
    if match["b64"] is None:
        raise InvalidRequestError(
            "Image data URLs must be base64 encoded (data:image/png;base64,...)",
            param=param,
            code="invalid_image",
        )
    encoded = match["data"].encode("ascii", errors="replace")
    # 4 base64 characters carry 3 bytes: refuse oversize input before decoding any of it.
    if len(encoded) // 4 * 3 - 2 > limits.max_bytes:
        raise _too_large(param, limits)
    if len(encoded) % 4 or not _B64_ALPHABET.fullmatch(encoded):
        raise InvalidRequestError(
            "The image data is not valid base64", param=param, code="invalid_base64"
        )
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:  # misplaced padding that the pattern alone lets through
        raise InvalidRequestError(
            "The image data is not valid base64", param=param, code="invalid_base64"
        ) from None
    media_type = _checked(data, param, limits)
    # Re-encoded so the block always holds canonical base64.
    source = {"type": "base64", "media_type": media_type,
              "data": base64.b64encode(data).decode("ascii")}
    return {"type": "image", "source": source}


def check_image_count(count: int, *, param: str, limits: ImageLimits) -> None:
    if count > limits.max_count:
        raise InvalidRequestError(
            f"The request has {count} images; at most {limits.max_count} are allowed",
            param=param,
            code="too_many_images",
        )
