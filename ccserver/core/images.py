"""Image parts that point elsewhere (http(s) URL, ``file://``, local path) become data URLs.

The CLI takes images only as base64 blocks in the user message (ccproto/images.py), so
the server fetches or reads every other form first, with the gateway's rules:

* http(s): `ccserver.fetch`, refused for non-public addresses, size-capped and timed.
* ``file://`` URLs and absolute paths: only inside ``file_access.additional_dirs``, judged
  on the resolved path (``..`` collapsed, symlinks followed) and again on the file
  actually opened; with no directories configured, local files are refused.

Only the last user message is resolved: it is the one turn the CLI is given as content
(images in earlier messages are refused by the prompt builder, or already live in a
resumed session).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

import attrs
import trio

from ccproto import (
    ChatCompletionRequest,
    ImageLimits,
    ImagePart,
    InvalidRequestError,
    check_image_count,
    data_url,
)

from ..settings import Settings
from ..settings.startup import access_dirs
from .fetch import fetch_image

__all__ = ["resolve_images"]


async def resolve_images(
    request: ChatCompletionRequest, settings: Settings
) -> ChatCompletionRequest:
    """The request with the last user message's images all given as data URLs.

    Raises:
        InvalidRequestError: too many images, or one cannot be fetched or read within the
            rules; the error names ``messages[i].content[j]``.
    """
    turns = [(i, m) for i, m in enumerate(request.messages)
             if m.role not in ("system", "developer")]
    if not turns or turns[-1][1].role != "user" or not isinstance(turns[-1][1].content, tuple):
        return request
    index, message = turns[-1]
    assert isinstance(message.content, tuple)
    limits = ImageLimits(max_bytes=settings.images.max_bytes,
                         max_count=settings.images.max_per_request)
    images = {j: p for j, p in enumerate(message.content) if isinstance(p, ImagePart)}
    # Counted before anything is fetched, so a long list costs no traffic.
    check_image_count(len(images), param=f"messages[{index}].content", limits=limits)
    # data: URLs are left for the prompt builder, which checks them.
    elsewhere = {j: p for j, p in images.items()
                 if p.image_url.url.strip()[:5].lower() != "data:"}
    if not elsewhere:
        return request
    parts = list(message.content)
    for j, part in elsewhere.items():
        url = part.image_url.url.strip()
        param = f"messages[{index}].content[{j}]"
        if url.lower().startswith(("http://", "https://")):
            data = await fetch_image(url, settings.images, param=param)
        else:
            data = await _read_local(_local_path(url, param), settings, param)
        resolved = attrs.evolve(part.image_url, url=data_url(data, param=param, limits=limits))
        parts[j] = attrs.evolve(part, image_url=resolved)
    messages = list(request.messages)
    messages[index] = attrs.evolve(message, content=tuple(parts))
    return attrs.evolve(request, messages=tuple(messages))


def _local_path(url: str, param: str) -> str:
    if url[:5].lower() == "file:":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise _refused("file:// image URLs must name a local file", param)
        path = unquote(parts.path)
    elif "://" in url:
        raise _refused("Image URLs must be http(s), data: or a local file path", param)
    else:
        path = url
    if not os.path.isabs(path):
        raise _refused("Local image paths must be absolute", param)
    return path


async def _read_local(path: str, settings: Settings, param: str) -> bytes:
    dirs = access_dirs(settings)
    if not dirs:
        raise _refused(
            "Local image files are disabled on this server (no file_access.additional_dirs)",
            param,
        )
    # Blocking file-system calls, so off the event loop; the result is small and bounded.
    return await trio.to_thread.run_sync(_read_inside, path, dirs, settings.images.max_bytes,
                                         param)


def _inside(path: Path, dirs: tuple[Path, ...]) -> bool:
    return any(path == d or path.is_relative_to(d) for d in dirs)


def _read_inside(path: str, dirs: tuple[Path, ...], max_bytes: int, param: str) -> bytes:
    outside = _refused("The image path is outside the directories this server may read",
                       param)
    real = Path(path).resolve()  # `..` collapsed, symlinks followed
    if not _inside(real, dirs):
        raise outside
    try:
        # O_NOFOLLOW: a file swapped for a symlink since resolve() fails instead of
        # following it; O_NONBLOCK: a FIFO cannot hang the open.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _refused("The image file does not exist", param) from None
    except OSError as exc:
        raise _refused(f"The image file cannot be read: {exc.strerror}", param) from None
    try:
        # The file really opened, in case a directory on the way was swapped meanwhile.
        opened = Path(f"/proc/self/fd/{fd}")
        if opened.exists() and not _inside(Path(os.readlink(opened)), dirs):
            raise outside
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refused("The image path is not a regular file", param)
        if info.st_size > max_bytes:
            raise _refused(f"The image is larger than the limit of {max_bytes} bytes", param,
                           code="image_too_large")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes and (chunk := os.read(fd, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _refused(message: str, param: str, code: str = "invalid_image_url") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)
