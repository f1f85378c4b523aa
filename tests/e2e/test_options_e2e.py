"""Images, file access, permissions, MCP and Claude Code options, end to end.

Most tests plan a run the way the gateway does (settings -> `claude_options` -> PlanOptions ->
`plan_invocation`), run the real CLI with exactly that argv, env, stdin and cwd against the
fake upstream, and check the CLI's records and the fake's request log. The last ones go
through the real gateway with the openai SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
import trio

from ccproto import ImageLimits, Invocation, PlanOptions, plan_invocation, structure_request
from ccserver.core.images import resolve_images
from ccserver.settings import ClaudeSettings, Settings
from ccserver.settings.sections import FileAccessSettings, ImagesSettings, McpSettings
from ccserver.settings.startup import claude_options
from tests.support.fakeapi import CLAUDE_BIN, FakeAPI, cli_env, running_fakeapi
from tests.support.gateway import running_gateway
from tests.support.images import PNG, as_data_url, png

pytestmark = [
    pytest.mark.e2e,
]
MCP_SERVER = str(Path(__file__).resolve().parents[1] / "support" / "mcp_server.py")


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAPI]:
    with running_fakeapi(tmp_path_factory.mktemp("fakeapi")) as api:
        yield api


class Run:
    """A finished CLI run: its records, init and result, and the fake's requests for it."""

    def __init__(self, fake: FakeAPI, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.rc, self.stderr = proc.returncode, proc.stderr.decode(errors="replace")
        self.records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        self.init = next(r for r in self.records if r.get("subtype") == "init")
        self.result = next(r for r in self.records if r["type"] == "result")
        self.requests = [r["body"] for r in fake.messages_requests()
                         if r["headers"].get("x-claude-code-session-id") == self.init["session_id"]]

    def blocks(self, kind: str, request: int = 0) -> list[dict[str, Any]]:
        return [b for m in self.requests[request]["messages"] if isinstance(m["content"], list)
                for b in m["content"] if b.get("type") == kind]


def plan(settings: Settings, fake: FakeAPI, tmp: Path, body: dict[str, Any]) -> Invocation:
    """The invocation the gateway would make for ``body`` under ``settings``."""
    (tmp / "ws").mkdir(exist_ok=True)
    env = cli_env(fake, tmp / "cfg")
    extra, c = claude_options(settings, env), settings.claude
    options = PlanOptions(
        executable=CLAUDE_BIN, cwd=str(tmp / "ws"), tools=c.tools,
        allowed_tools=(*c.allowed_tools, *extra.mcp.allowed_tools),
        permission_mode=c.permission_mode, max_turns=c.max_turns, max_retries=c.max_retries,
        model_map=dict(c.model_map), fallback_model=c.fallback_model,
        disallowed_tools=c.disallowed_tools, add_dirs=extra.add_dirs,
        skip_permissions=settings.file_access.skip_permissions,
        setting_sources=extra.setting_sources, mcp_configs=extra.mcp.config_files,
        mcp_debug=settings.mcp.debug, images=ImageLimits(max_bytes=settings.images.max_bytes),
    )
    request = trio.run(resolve_images, structure_request(json.dumps(body)), settings)
    return plan_invocation(request, options, inherited_env=env)


def run(fake: FakeAPI, inv: Invocation, **env: str) -> Run:
    proc = subprocess.run(inv.argv, input=inv.stdin, capture_output=True, cwd=inv.cwd,
                          env={**inv.env, **env}, timeout=60, check=False)
    return Run(fake, proc)


def ask(content: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "sonnet", "messages": [{"role": "user", "content": content}], **fields}


def directive(**step: Any) -> str:
    return f"[[fake {json.dumps(step)}]]"


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


SETTINGS = Settings(claude=ClaudeSettings(max_retries=0))


# ---- images -------------------------------------------------------------------------------


def test_images_reach_the_upstream_as_image_blocks(fake: FakeAPI, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "blue.png").write_bytes(png(rgb=(0, 0, 255)))
    served = png(rgb=(0, 255, 0))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(served)))
            self.end_headers()
            self.wfile.write(served)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    settings = Settings(claude=SETTINGS.claude,
                        images=ImagesSettings(allow_private_addresses=True),
                        file_access=FileAccessSettings(additional_dirs=(str(pics),)))
    content = [{"type": "text", "text": "Three pictures " + directive(text="Seen.")},
               image(as_data_url(PNG, "image/jpeg")),
               image(f"http://127.0.0.1:{httpd.server_address[1]}/green.png"),
               image(f"file://{pics}/blue.png")]
    try:
        result = run(fake, plan(settings, fake, tmp_path, ask(content)))
    finally:
        httpd.shutdown()
    assert result.rc == 0 and result.result["result"] == "Seen.", result.stderr
    sources = [b["source"] for b in result.blocks("image")]
    assert [s["type"] for s in sources] == ["base64"] * 3
    assert {s["media_type"] for s in sources} == {"image/png"}  # the jpeg label was corrected
    assert [s["data"] for s in sources] == [as_data_url(p).split(",")[1]
                                            for p in (PNG, served, png(rgb=(0, 0, 255)))]


@pytest.mark.parametrize(("part", "message"), [
    (image("{pics}/../secret.png"), "outside the directories"),  # path traversal
    (image("{pics}/escape.png"), "outside the directories"),  # symlink escape
    (image("http://127.0.0.1:9/x.png"), "loopback, private"),  # private address
    (image(as_data_url(PNG + b"\x00" * 2048)), "larger than the limit"),  # oversize
    (image(as_data_url(b"GIF00a not really")), "not PNG, JPEG, GIF or WebP"),  # wrong magic
    (image("data:image/png;base64,iVBOR w0KGgo="), "not valid base64"),
])
def test_refused_images_never_start_the_cli(fake: FakeAPI, tmp_path: Path,
                                            part: dict[str, Any], message: str) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    (tmp_path / "secret.png").write_bytes(PNG)
    (pics / "escape.png").symlink_to(tmp_path / "secret.png")
    part = json.loads(json.dumps(part).replace("{pics}", str(pics)))
    settings = Settings(images=ImagesSettings(max_bytes=1024),
                        file_access=FileAccessSettings(additional_dirs=(str(pics),)))
    before = len(fake.requests())
    with pytest.raises(Exception, match=message) as info:
        plan(settings, fake, tmp_path, ask([{"type": "text", "text": "x"}, part]))
    assert getattr(info.value, "status_hint", None) == 400
    assert len(fake.requests()) == before


# ---- MCP ----------------------------------------------------------------------------------


def mcp_settings(tmp: Path, **mcp: Any) -> Settings:
    config = {"mcpServers": {"mini": {"command": sys.executable, "args": [MCP_SERVER],
                                      "env": {"MCP_CALL_LOG": str(tmp / "calls.jsonl")}}}}
    (tmp / "mcp.json").write_text(json.dumps(config))
    return Settings(claude=SETTINGS.claude,
                    mcp=McpSettings(enabled=True, config_file=str(tmp / "mcp.json"), **mcp))


def test_mcp_tool_is_offered_called_and_its_result_reaches_the_upstream(
    fake: FakeAPI, tmp_path: Path
) -> None:
    steps = [{"tool_use": {"name": "mcp__mini__echo", "input": {"text": "over MCP"}}},
             {"text": "The server echoed."}]
    result = run(fake, plan(mcp_settings(tmp_path), fake, tmp_path,
                            ask("Use the echo tool " + directive(steps=steps))))
    assert result.rc == 0, result.stderr
    assert {"mcp__mini__echo", "mcp__mini__add"} <= set(result.init["tools"])
    assert result.init["mcp_servers"] == [{"name": "mini", "status": "connected"}]
    first, _ = result.requests
    assert "mcp__mini__echo" in [t["name"] for t in first["tools"]]
    (tool_result,) = result.blocks("tool_result", 1)
    assert tool_result["content"] == [{"type": "text", "text": "ECHO: over MCP"}]
    assert "is_error" not in tool_result or tool_result["is_error"] is False
    calls = (tmp_path / "calls.jsonl").read_text().splitlines()
    assert [json.loads(c) for c in calls] == [{"name": "echo", "arguments": {"text": "over MCP"}}]
    assert result.result["result"] == "The server echoed."


def test_only_configured_mcp_servers_load(fake: FakeAPI, tmp_path: Path) -> None:
    # A workspace .mcp.json and a user-config server: the CLI would start both unasked.
    other = {"command": sys.executable, "args": [MCP_SERVER]}
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / ".mcp.json").write_text(json.dumps({"mcpServers": {"proj": other}}))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / ".claude.json").write_text(json.dumps({"mcpServers": {"usr": other}}))
    names = {}
    for strict in (True, False):
        result = run(fake, plan(mcp_settings(tmp_path, strict=strict), fake, tmp_path, ask("hi")))
        names[strict] = sorted(s["name"] for s in result.init["mcp_servers"])
    assert names == {True: ["mini"], False: ["mini", "usr"]}


# ---- workspace context, dirs and permissions ----------------------------------------------


def test_workspace_claude_md_only_when_configured(fake: FakeAPI, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "CLAUDE.md").write_text("Always answer in MARKER-CLAUDE-MD-42 style.\n")
    seen = {}
    for context in (False, True):
        settings = Settings(claude=SETTINGS.claude,
                            file_access=FileAccessSettings(workspace_context=context))
        result = run(fake, plan(settings, fake, tmp_path, ask("hi")))
        seen[context] = "MARKER-CLAUDE-MD-42" in json.dumps(result.requests[0])
    assert seen == {False: False, True: True}


def test_add_dir_lets_read_reach_the_directory(fake: FakeAPI, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "note.txt").write_text("NOTE-CONTENT-7\n")
    steps = [{"tool_use": {"name": "Read", "input": {"file_path": str(data / "note.txt")}}},
             {"text": "Read it."}]
    body = ask("read " + directive(steps=steps))
    outcomes = {}
    for dirs in ((), (str(data),)):
        settings = Settings(claude=SETTINGS.claude,
                            file_access=FileAccessSettings(additional_dirs=dirs))
        result = run(fake, plan(settings, fake, tmp_path, body))
        (tool_result,) = result.blocks("tool_result", 1)
        outcomes[bool(dirs)] = "NOTE-CONTENT-7" in json.dumps(tool_result)
    assert outcomes == {False: False, True: True}  # default mode: outside cwd is denied


def test_permissions_are_enforced_unless_skipped(fake: FakeAPI, tmp_path: Path) -> None:
    target = tmp_path / "ws" / "made.txt"
    steps = [{"tool_use": {"name": "Write", "input": {"file_path": str(target), "content": "x"}}},
             {"text": "Done."}]
    body = ask("write " + directive(steps=steps))
    result = run(fake, plan(SETTINGS, fake, tmp_path, body))
    assert [d["tool_name"] for d in result.result["permission_denials"]] == ["Write"]
    assert not target.exists()
    skip = Settings(claude=SETTINGS.claude, file_access=FileAccessSettings(skip_permissions=True))
    inv = plan(skip, fake, tmp_path, body)
    result = run(fake, inv)
    assert result.rc == 0 and result.init["permissionMode"] == "bypassPermissions", result.stderr
    assert target.read_text() == "x" and result.result["permission_denials"] == []
    if os.geteuid() == 0:  # why the plan sets IS_SANDBOX=1 (reference §1.2)
        env = {k: v for k, v in inv.env.items() if k != "IS_SANDBOX"}
        proc = subprocess.run(inv.argv, input=inv.stdin, capture_output=True, cwd=inv.cwd,
                              env=env, timeout=60, check=False)
        assert proc.returncode == 1 and b"root/sudo" in proc.stderr


# ---- request narrowing, models ------------------------------------------------------------


def test_requests_narrow_tools_and_turns(fake: FakeAPI, tmp_path: Path) -> None:
    settings = mcp_settings(tmp_path)
    only_read = run(fake, plan(settings, fake, tmp_path, ask("hi", enabled_tools=["Read"])))
    assert only_read.init["tools"] == ["Read", "mcp__mini__add", "mcp__mini__echo"]
    fewer = run(fake, plan(settings, fake, tmp_path,
                           ask("hi", disabled_tools=["Bash", "mcp__mini__add"])))
    assert {"Bash", "Glob", "Grep", "mcp__mini__add"}.isdisjoint(fewer.init["tools"])
    assert "Read" in fewer.init["tools"] and "mcp__mini__echo" in fewer.init["tools"]
    steps = [{"tool_use": {"name": "mcp__mini__add", "input": {"a": 1, "b": 2}}}, {"text": "3"}]
    one_turn = run(fake, plan(settings, fake, tmp_path,
                              ask("add " + directive(steps=steps), max_turns=1)))
    assert one_turn.result["subtype"] == "error_max_turns"


def test_model_map_and_fallback_model(fake: FakeAPI, tmp_path: Path) -> None:
    settings = Settings(claude=ClaudeSettings(max_retries=3, model_map={"gpt-4o": "sonnet"},
                                              fallback_model="haiku"))
    body = {**ask("hi " + directive(text="ok", error={"status": 529, "times": 3})),
            "model": "gpt-4o"}
    result = run(fake, plan(settings, fake, tmp_path, body))
    assert result.rc == 0 and result.result["result"] == "ok", result.stderr
    assert [r["model"] for r in result.requests] == ["claude-sonnet-5"] * 3 + ["claude-haiku-4-5-20251001"]
    assert any(r.get("subtype") == "model_fallback" for r in result.records)


# ---- through the gateway ------------------------------------------------------------------


def gateway_env(fake: FakeAPI, tmp: Path, **settings: str) -> dict[str, str]:
    env = cli_env(fake, str(tmp / "cfg"))
    env |= {"CLAUDE_CODE__SERVER__DATA_DIR": str(tmp / "data"),
            "CLAUDE_CODE__CLAUDE__WORKSPACE": str(tmp / "ws"),
            "CLAUDE_CODE__CLAUDE__MAX_RETRIES": "0"}
    return env | {f"CLAUDE_CODE__{k.upper()}": v for k, v in settings.items()}


def test_gateway_serves_images_and_mcp(fake: FakeAPI, tmp_path: Path) -> None:
    mcp_settings(tmp_path)
    env = gateway_env(fake, tmp_path, mcp__enabled="true",
                      mcp__config_file=str(tmp_path / "mcp.json"))
    steps = [{"tool_use": {"name": "mcp__mini__add", "input": {"a": 2, "b": 40}}},
             {"text": "It is 42."}]
    with running_gateway(env) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0, timeout=60)
        done = client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this? " + directive(steps=steps)},
            {"type": "image_url", "image_url": {"url": as_data_url(PNG)}}]}])
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    assert done.choices[0].message.content is not None
    assert done.choices[0].message.content.endswith("It is 42.")
    assert "sonnet" in info.value.message and info.value.code == "model_not_found"
    bodies = [r["body"] for r in fake.messages_requests()]
    images = [b for body in bodies for m in body["messages"] if isinstance(m["content"], list)
              for b in m["content"] if b.get("type") == "image"]
    assert images and images[-1]["source"]["data"] == as_data_url(PNG).split(",")[1]
    assert '"42"' in json.dumps(bodies[-1]["messages"][-1])


def test_gateway_fetches_image_urls(fake: FakeAPI, tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    env = gateway_env(fake, tmp_path, images__allow_private_addresses="true",
                      file_access__additional_dirs=json.dumps([str(tmp_path)]))
    with running_gateway(env) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": [
                {"type": "text", "text": "x"}, image(f"{tmp_path}/../etc/passwd")]}])
        assert info.value.code == "invalid_image_url"
        done = client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this? " + directive(text="A cat.")},
            image(f"file://{tmp_path}/cat.png")]}])
    assert done.choices[0].message.content == "A cat."
    assert as_data_url(PNG).split(",")[1] in json.dumps(fake.messages_requests()[-1]["body"])


def test_gateway_streams_reasoning_only_when_configured(fake: FakeAPI, tmp_path: Path) -> None:
    said = {}
    for on in (False, True):
        env = gateway_env(fake, tmp_path / str(on), claude__include_reasoning=str(on).lower())
        with running_gateway(env) as gw:
            client = openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0, timeout=60)
            stream = client.chat.completions.create(model="sonnet", stream=True, messages=[
                {"role": "user", "content": directive(thinking="Hmm, let me see.", text="Yes.")}])
            deltas = [c.choices[0].delta for c in stream if c.choices]
        said[on] = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        assert "".join(d.content or "" for d in deltas) == "Yes."
    assert said == {False: "", True: "Hmm, let me see."}


def test_gateway_stops_on_a_bad_mcp_config(fake: FakeAPI, tmp_path: Path) -> None:
    (tmp_path / "mcp.json").write_text('{"mcpServers": {"bad name": {"command": "x"}}}')
    env = gateway_env(fake, tmp_path, mcp__enabled="true",
                      mcp__config_file=str(tmp_path / "mcp.json"))
    proc = subprocess.run([sys.executable, "-m", "ccserver", "--port", "0"], env=env,
                          capture_output=True, timeout=30, check=False)
    assert proc.returncode != 0
    assert b"server 'bad name': names may hold only letters" in proc.stderr
