"""resolve_images: http(s) fetching with address checks, and local files inside allowed dirs.

Every server here listens on 127.0.0.1; other names are answered by a stub resolver, and no
test ever connects to anything but loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio

from ccproto import ChatCompletionRequest, InvalidRequestError, structure_request
from ccserver.core import fetch
from ccserver.core.fetch import is_public_address
from ccserver.core.images import resolve_images
from ccserver.settings import Settings
from ccserver.settings.sections import FileAccessSettings, ImagesSettings
from tests.support.images import PNG, as_data_url

BIG = PNG + b"\x00" * 5000


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]]  # (path, Host header), set per server

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("host", "")))
        path = self.path
        if path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            target = "/cat.png" if hops <= 1 else f"/redirect/{hops - 1}"
            return self._send(302, b"", [("Location", target)])
        if path.startswith("/to/"):  # an absolute redirect: /to/<url-encoded target>
            return self._send(302, b"", [("Location", path[4:])])
        if path == "/slow":
            time.sleep(3)
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"200\r\n" + b"\x00" * 0x200 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return None
        bodies = {"/cat.png": PNG, "/big.png": BIG, "/notes.txt": b"hello, not an image"}
        if path not in bodies:
            return self._send(404, b"missing")
        return self._send(200, bodies[path])

    def _send(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Server:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        handler = type("H", (Handler,), {"seen": self.seen})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


class StubResolver(trio.abc.HostnameResolver):
    """Answers for made-up names; counts lookups so tests see one resolution per hop."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def getaddrinfo(self, host: bytes | None, port: Any, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> Any:
        name = (host or b"").decode()
        self.calls.append(name)
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addrs = self.answers[name]
        if name.startswith("rebind.") and len(self.calls) > 1:
            addrs = ["127.0.0.3"]  # a second lookup gets another (still loopback) address
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, int(port)) if ":" not in a else (a, int(port), 0, 0)) for a in addrs]

    async def getnameinfo(self, sockaddr: Any, flags: int) -> Any:
        raise NotImplementedError


@pytest.fixture
async def resolver() -> AsyncIterator[StubResolver]:
    # Async: the resolver is per trio.run, so it is set inside the test's run.
    stub = StubResolver({})
    previous = trio.socket.set_custom_hostname_resolver(stub)
    yield stub
    trio.socket.set_custom_hostname_resolver(previous)


def settings(dirs: Sequence[Path] = (), **images: Any) -> Settings:
    return Settings(images=ImagesSettings(**{"fetch_timeout_seconds": 5.0, **images}),
                    file_access=FileAccessSettings(additional_dirs=tuple(map(str, dirs))))


def request(*urls: str, earlier: str | None = None) -> ChatCompletionRequest:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "look"}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    messages: list[dict[str, Any]] = [{"role": "system", "content": "s"}]
    if earlier is not None:
        messages += [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": earlier}}]},
                     {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": parts})
    return structure_request(json.dumps({"model": "sonnet", "messages": messages}))


def urls_of(req: ChatCompletionRequest) -> list[str]:
    content = req.messages[-1].content
    assert isinstance(content, tuple)
    return [p.image_url.url for p in content if hasattr(p, "image_url")]


async def resolve(req: ChatCompletionRequest, s: Settings) -> ChatCompletionRequest:
    with trio.fail_after(15):
        return await resolve_images(req, s)


async def refused(req: ChatCompletionRequest, s: Settings, match: str) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError, match=match) as info:
        await resolve(req, s)
    assert info.value.status_hint == 400
    return info.value


# ---- http(s) ------------------------------------------------------------------------------


async def test_data_urls_and_text_only_requests_are_left_alone() -> None:
    req = request(as_data_url(PNG))
    assert await resolve(req, settings()) is req
    plain = structure_request(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    assert await resolve(plain, settings()) is plain


async def test_loopback_url_is_refused_without_connecting(server: Server) -> None:
    err = await refused(request(server.url("/cat.png")), settings(), "loopback, private")
    assert err.param == "messages[1].content[1]" and err.code == "image_fetch_failed"
    err = await refused(request(server.url("/cat.png", "localhost")), settings(), "loopback")
    assert server.seen == []


async def test_allowed_private_fetch_becomes_a_data_url(server: Server) -> None:
    req = request(server.url("/cat.png"), earlier="https://example.invalid/old.png")
    out = await resolve(req, settings(allow_private_addresses=True))
    assert urls_of(out) == [as_data_url(PNG)]
    # Only the last user message is resolved; the text part is kept.
    assert out.messages[1] == req.messages[1] and out.messages[-1].content[0] == req.messages[-1].content[0]  # type: ignore[index]


@pytest.mark.parametrize("answers", [
    ["10.0.0.5"], ["169.254.169.254"], ["100.100.100.200"], ["192.0.0.192"], ["0.0.0.0"],
    ["::ffff:127.0.0.1"], ["64:ff9b::a00:1"], ["2002:7f00:1::"], ["fd00:ec2::254"], ["::1"],
    ["93.184.215.14", "192.168.1.1"],  # one bad answer among good ones is enough
])
async def test_names_resolving_to_non_public_addresses_are_refused(
    resolver: StubResolver, answers: list[str]
) -> None:
    resolver.answers["images.test"] = answers
    await refused(request("http://images.test/cat.png"), settings(), "images.test")
    assert resolver.calls == ["images.test"]


def test_is_public_address() -> None:
    assert is_public_address("93.184.215.14") and is_public_address("2606:4700::1111")
    for bad in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.1.1", "::",
                "fe80::1%eth0", "224.0.0.1", "ff02::1", "100.64.0.1", "2001:0:4136:e378:8000:63bf:f5ff:fffe"):
        assert not is_public_address(bad), bad


async def test_each_hop_is_resolved_once_and_checked(
    server: Server, resolver: StubResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Treat 127.0.0.1 as public so a loopback server can stand in for a public one.
    monkeypatch.setattr(fetch, "is_public_address", lambda a: a == "127.0.0.1")
    resolver.answers |= {"rebind.test": ["127.0.0.1"], "inner.test": ["127.0.0.2"]}
    out = await resolve(request(f"http://rebind.test:{server.port}/cat.png"), settings())
    assert urls_of(out) == [as_data_url(PNG)]
    # One lookup: the connection went to the checked address, with the name as Host.
    assert resolver.calls == ["rebind.test"]
    assert server.seen == [("/cat.png", f"rebind.test:{server.port}")]
    # The next lookup gets the other answer, which is checked and refused.
    await refused(request(f"http://rebind.test:{server.port}/cat.png"), settings(), "rebind")
    assert resolver.calls == ["rebind.test"] * 2 and len(server.seen) == 1
    # A redirect's hop is checked too: its host resolves to a refused address.
    hop = f"/to/http://inner.test:{server.port}/cat.png"
    await refused(request(server.url(hop)), settings(), "inner.test")
    assert server.seen[-1][0] == hop and resolver.calls[-1] == "inner.test"


async def test_redirects_are_limited(server: Server) -> None:
    s = settings(allow_private_addresses=True, max_redirects=2)
    assert urls_of(await resolve(request(server.url("/redirect/2")), s)) == [as_data_url(PNG)]
    await refused(request(server.url("/redirect/3")), s, "redirected more than 2 times")


@pytest.mark.parametrize(("path", "match", "code"), [
    ("/big.png", "limit of 1000 bytes", "image_too_large"),  # Content-Length says so
    ("/chunked", "limit of 1000 bytes", "image_too_large"),  # counted while reading
    ("/notes.txt", "not PNG, JPEG, GIF or WebP", "invalid_image_format"),
    ("/missing.png", "HTTP 404", "image_fetch_failed"),
])
async def test_bad_responses(server: Server, path: str, match: str, code: str) -> None:
    s = settings(allow_private_addresses=True, max_bytes=1000)
    assert (await refused(request(server.url(path)), s, match)).code == code


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    assert shutil.which("openssl"), "openssl is needed to make a test certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    s = Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    s.httpd.socket = context.wrap_socket(s.httpd.socket, server_side=True)
    s.thread.start()
    yield s, cert
    s.httpd.shutdown()
    s.httpd.server_close()


async def test_https_is_verified(tls_server: tuple[Server, Path],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert = tls_server
    url = f"https://127.0.0.1:{server.port}/cat.png"
    s = settings(allow_private_addresses=True)
    await refused(request(url), s, "CERTIFICATE_VERIFY_FAILED")
    trusting = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(fetch.ssl, "create_default_context", lambda: trusting)
    assert urls_of(await resolve(request(url), s)) == [as_data_url(PNG)]


async def test_slow_server_times_out(server: Server) -> None:
    s = settings(allow_private_addresses=True, fetch_timeout_seconds=0.3)
    await refused(request(server.url("/slow")), s, "longer than 0.3 s")


@pytest.mark.parametrize(("url", "match"), [
    ("http://user:pw@127.0.0.1/cat.png", "credentials"),
    ("ftp://127.0.0.1/cat.png", "http\\(s\\), data: or a local file"),
    ("http://127.0.0.1:99999/cat.png", "invalid port"),
    ("http://no-such-host.test/cat.png", "cannot be resolved"),
])
async def test_unusable_urls(resolver: StubResolver, url: str, match: str) -> None:
    await refused(request(url), settings(allow_private_addresses=True), match)


async def test_fetching_can_be_switched_off(server: Server) -> None:
    s = settings(allow_private_addresses=True, fetch_urls=False)
    await refused(request(server.url("/cat.png")), s, "disabled")
    assert server.seen == []


async def test_too_many_images_are_refused_before_any_fetch(server: Server) -> None:
    s = settings(allow_private_addresses=True, max_per_request=2)
    err = await refused(request(*[server.url("/cat.png")] * 3), s, "at most 2")
    assert err.param == "messages[1].content" and server.seen == []


# ---- local files --------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    (allowed / "sub" / "cat.png").write_bytes(PNG)
    (allowed / "big.png").write_bytes(BIG)
    (outside / "secret.png").write_bytes(PNG)
    (allowed / "escape.png").symlink_to(outside / "secret.png")
    (allowed / "inner.png").symlink_to(allowed / "sub" / "cat.png")
    (allowed / "out").symlink_to(outside)
    os.mkfifo(allowed / "fifo.png")
    (tmp_path / "link-to-allowed").symlink_to(allowed)
    return tmp_path


async def test_local_files_inside_the_allowed_dirs(tree: Path) -> None:
    s = settings([tree / "allowed"])
    for url in (f"{tree}/allowed/sub/cat.png", f"file://{tree}/allowed/sub/cat.png",
                f"file://localhost{tree}/allowed/inner.png", f"{tree}/allowed/sub/../sub/cat.png"):
        assert urls_of(await resolve(request(url), s)) == [as_data_url(PNG)], url
    # A symlinked allowed dir is compared by its target.
    linked = settings([tree / "link-to-allowed"])
    assert urls_of(await resolve(request(f"{tree}/allowed/sub/cat.png"), linked)) == [as_data_url(PNG)]


@pytest.mark.parametrize(("path", "match"), [
    ("{t}/outside/secret.png", "outside the directories"),
    ("{t}/allowed/../outside/secret.png", "outside the directories"),  # traversal
    ("{t}/allowed/escape.png", "outside the directories"),  # symlink escape
    ("{t}/allowed/out/secret.png", "outside the directories"),  # symlinked dir escape
    ("/etc/passwd", "outside the directories"),
    ("{t}/allowed/nope.png", "does not exist"),
    ("{t}/allowed/sub", "not a regular file"),
    ("{t}/allowed/fifo.png", "not a regular file"),
    ("{t}/allowed/big.png", "limit of 1000 bytes"),
    ("file://otherhost{t}/allowed/sub/cat.png", "must name a local file"),
    ("allowed/sub/cat.png", "must be absolute"),
])
async def test_local_files_refused(tree: Path, path: str, match: str) -> None:
    url = path.format(t=tree)
    err = await refused(request(url), settings([tree / "allowed"], max_bytes=1000), match)
    assert err.param == "messages[1].content[1]"


async def test_local_files_are_off_without_dirs(tree: Path) -> None:
    await refused(request(f"{tree}/allowed/sub/cat.png"), settings(), "disabled")
