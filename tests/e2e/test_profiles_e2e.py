"""The lean profile end to end: what a ``-chat`` model or the profile header sends upstream.

The real CLI against the fake upstream, whose request log holds every body: a lean turn
carries no Claude Code tools and the client's system prompt instead of Claude Code's; a
full one carries both of Claude Code's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.e2e import client, directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway

# Claude Code's own system prompt starts so (its agent prompt follows in the same block).
CLAUDE_CODE_PROMPT = "You are an interactive agent"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("profiles")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, pool__size="0", pool__idle_seconds="0")
        with running_gateway(env) as gw:
            yield fake, gw


def upstream(fake: FakeAPI, marker: str) -> dict[str, Any]:
    """The one Messages request whose system prompt holds ``marker``."""
    (body,) = [r["body"] for r in fake.messages_requests()
               if marker in json.dumps(r["body"].get("system"))]
    return body  # type: ignore[no-any-return]


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in body["system"])


def ask(gw: Gateway, model: str, marker: str, **extra: Any) -> str | None:
    done = client(gw).chat.completions.create(
        model=model, messages=[{"role": "system", "content": marker},
                               {"role": "user", "content": "hi " + directive(text="Hello")}],
        **extra)
    assert done.choices[0].message.content == "Hello"
    return done.model


def test_a_chat_model_sends_no_claude_code_tools_and_only_the_clients_prompt(
        stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    assert ask(gw, "sonnet-chat", "LEAN-MARKER-1") == "sonnet"
    body = upstream(fake, "LEAN-MARKER-1")
    assert body["tools"] == []
    text = system_text(body)
    assert CLAUDE_CODE_PROMPT not in text and "context_management" not in body
    assert text.endswith("LEAN-MARKER-1") and len(text) < 300


def test_a_full_model_sends_claude_codes_tools_and_prompt(
        stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    ask(gw, "sonnet", "FULL-MARKER-1")
    body = upstream(fake, "FULL-MARKER-1")
    names = {t["name"] for t in body["tools"]}
    assert {"Bash", "Read", "Edit"} <= names
    text = system_text(body)
    assert CLAUDE_CODE_PROMPT in text and "FULL-MARKER-1" in text


def test_the_profile_header_picks_lean_and_wins_over_the_alias(
        stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    ask(gw, "sonnet", "LEAN-MARKER-2", extra_headers={"x-ccserver-profile": "lean"})
    assert upstream(fake, "LEAN-MARKER-2")["tools"] == []
    ask(gw, "sonnet-chat", "FULL-MARKER-2", extra_headers={"x-ccserver-profile": "full"})
    assert upstream(fake, "FULL-MARKER-2")["tools"] != []


def test_an_unknown_base_model_is_a_400_and_models_lists_chat_aliases(
        stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    with pytest.raises(openai.BadRequestError, match="gpt-5-chat"):
        ask(gw, "gpt-5-chat", "NEVER")
    ids = {m.id for m in client(gw).models.list()}
    assert {"sonnet", "sonnet-chat", "opus-chat", "haiku-chat"} <= ids
