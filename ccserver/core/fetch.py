"""Fetching an image URL for a client, without becoming a way into the server's network.

A client-supplied URL is a server-side request forgery risk, so each hop of a fetch:

* resolves the host once, refuses it when any address is not public (loopback, private,
  link-local, cloud metadata, unspecified, multicast, and those hidden inside IPv6 forms)
  unless ``images.allow_private_addresses``;
* connects to exactly the address it checked, so a second DNS answer cannot swap in
  another one (DNS rebinding), and never through a proxy;
* stops at ``images.max_bytes`` and after ``images.max_redirects`` redirects, with one
  deadline, ``images.fetch_timeout_seconds``, over all hops.

HTTP/1.1 is spoken with h11 over trio streams; TLS is verified against the system roots.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from urllib.parse import urljoin, urlsplit

import h11
import trio

from ccproto import InvalidRequestError, excerpt

from ..settings.sections import ImagesSettings

__all__ = ["fetch_image", "is_public_address"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Metadata services at addresses Python may call global; the others (169.254.169.254,
# fd00:ec2::254, 100.100.100.200) are link-local, private or shared and refused anyway.
_DENIED = (ipaddress.ip_network("192.0.0.0/24"),)
_READ_SIZE = 65536

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address, IPv4 inside IPv6 judged as IPv4."""
    ip: IPAddress = ipaddress.ip_address(address.partition("%")[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return is_public_address(str(inner))
    return ip.is_global and not ip.is_multicast and not any(ip in n for n in _DENIED)


def _refuse(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="image_fetch_failed")


async def fetch_image(url: str, settings: ImagesSettings, *, param: str) -> bytes:
    """The body of ``url`` after redirects; any failure is a 400 naming ``param``."""
    if not settings.fetch_urls:
        raise _refuse("Fetching image URLs is disabled on this server; send a data: URL",
                      param)
    # One deadline for every hop: redirects cannot stretch the time a request waits.
    with trio.move_on_after(settings.fetch_timeout_seconds):
        for _ in range(settings.max_redirects + 1):
            status, location, body = await _get(url, settings, param)
            if status in _REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if status != 200:
                raise _refuse(f"Fetching the image URL failed: HTTP {status}", param)
            return body
        raise _refuse(f"The image URL redirected more than {settings.max_redirects} times",
                      param)
    raise _refuse(
        f"Fetching the image URL took longer than {settings.fetch_timeout_seconds:g} s", param
    )


async def _connect(host: str, port: int, settings: ImagesSettings, param: str) -> trio.abc.Stream:
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise _refuse(f"The image URL's host {excerpt(host)} cannot be resolved", param) from None
    if not settings.allow_private_addresses:
        for *_, sockaddr in infos:
            if not is_public_address(str(sockaddr[0])):
                raise _refuse(
                    f"The image URL's host {excerpt(host)} is a loopback, private, link-local or "
                    "metadata address; such URLs are not fetched",
                    param,
                )
    for family, type_, proto, _, sockaddr in infos:
        sock = trio.socket.socket(family, type_, proto)
        try:
            await sock.connect(sockaddr)  # the checked address itself, not the name again
        except OSError:
            sock.close()
            continue
        return trio.SocketStream(sock)
    raise _refuse(f"Cannot connect to the image URL's host {excerpt(host)}", param)


async def _get(url: str, settings: ImagesSettings, param: str) -> tuple[int, str | None, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse("Image URLs must be http(s), data: or a local file path", param)
    if parts.username is not None or parts.password is not None:
        raise _refuse("Image URLs with credentials are not fetched", param)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refuse("The image URL has an invalid port", param) from None
    stream = await _connect(parts.hostname, port, settings, param)
    try:
        if parts.scheme == "https":
            stream = trio.SSLStream(stream, ssl.create_default_context(),
                                    server_hostname=parts.hostname, https_compatible=True)
        return await _exchange(stream, parts.netloc.rpartition("@")[2],
                               parts.path or "/", parts.query, settings, param)
    except (OSError, trio.BrokenResourceError, h11.ProtocolError, ssl.SSLError) as exc:
        # trio reports TLS failures as BrokenResourceError caused by the SSLError.
        reason = exc.__cause__ or exc
        raise _refuse(f"Fetching the image URL failed: {reason or type(reason).__name__}",
                      param) from None
    finally:
        await trio.aclose_forcefully(stream)


async def _exchange(
    stream: trio.abc.Stream, host: str, path: str, query: str,
    settings: ImagesSettings, param: str,
) -> tuple[int, str | None, bytes]:
    conn = h11.Connection(h11.CLIENT)
    target = path + (f"?{query}" if query else "")
    request = h11.Request(method="GET", target=target, headers=[
        ("host", host), ("user-agent", "ccserver-image-fetch"), ("accept", "image/*"),
        # No compression: the size cap is on what the image is, not on what was sent.
        ("accept-encoding", "identity"), ("connection", "close"),
    ])
    await stream.send_all(conn.send(request) + (conn.send(h11.EndOfMessage()) or b""))
    status, location, body = 0, None, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(_READ_SIZE)))
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
            location = headers.get("location")
            if status != 200:
                return status, location, b""  # neither an error page nor a redirect body
            if int(headers.get("content-length", "0") or 0) > settings.max_bytes:
                raise _too_large(settings, param)
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > settings.max_bytes:
                raise _too_large(settings, param)
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, location, bytes(body)


def _too_large(settings: ImagesSettings, param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The image is larger than the limit of {settings.max_bytes} bytes",
        param=param, code="image_too_large",
    )
