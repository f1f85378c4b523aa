from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    ImageLimits,
    InvalidRequestError,
    PlanOptions,
    data_url,
    image_block,
    plan_invocation,
    sniff_media_type,
    structure_request,
)
from tests.support.images import GIF, JPEG_HEAD, PNG, WEBP_HEAD, as_data_url

LIMITS = ImageLimits(max_bytes=1000, max_count=2)
P = "messages[0].content[1]"


def refused(url: str, limits: ImageLimits = LIMITS) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        image_block(url, param=P, limits=limits)
    assert info.value.status_hint == 400 and info.value.param == P
    return info.value


@pytest.mark.parametrize(("data", "media_type"), [
    (PNG, "image/png"), (JPEG_HEAD, "image/jpeg"), (GIF, "image/gif"), (WEBP_HEAD, "image/webp"),
])
def test_each_format_becomes_a_base64_block(data: bytes, media_type: str) -> None:
    assert sniff_media_type(data) == media_type
    block = image_block(as_data_url(data), param=P, limits=LIMITS)
    assert block == {"type": "image", "source": {
        "type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}}


def test_the_declared_media_type_is_not_trusted() -> None:
    block = image_block(as_data_url(PNG, "image/jpeg"), param=P, limits=LIMITS)
    assert block["source"]["media_type"] == "image/png"


@pytest.mark.parametrize("data", [
    b"%PDF-1.7 not an image", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"GIF88a" + b"\x00" * 8,
    b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x89PNG\r\n\x1a",  # truncated magic
])
def test_wrong_magic_bytes_are_refused(data: bytes) -> None:
    assert sniff_media_type(data) is None
    assert refused(as_data_url(data)).code == "invalid_image_format"


@pytest.mark.parametrize("payload", [
    "iVBORw0KGgo=x",  # data after padding
    "iVBORw0K Ggo=",  # whitespace
    "iVBORw0KGgo\n",  # newline
    "iVBOR-_KGgo=",  # URL-safe alphabet
    "iVBORw0KGg",  # missing padding
    "iVBORw0KGg===",  # too much padding
    "iVBORw0KGgoé",  # not ASCII
    "%69VBORw0KGgo=",  # percent-encoded
])
def test_bad_base64_is_refused(payload: str) -> None:
    assert refused(f"data:image/png;base64,{payload}").code == "invalid_base64"


@pytest.mark.parametrize(("url", "code"), [
    ("https://example.com/cat.png", "unsupported_image_url"),
    ("/srv/images/cat.png", "unsupported_image_url"),
    ("data:image/png,rawbytes", "invalid_image"),  # not base64
    ("data:image/png;base64,", "invalid_image"),  # empty
])
def test_other_forms_are_refused(url: str, code: str) -> None:
    assert refused(url).code == code


def test_size_limit_is_on_decoded_bytes_and_checked_before_decoding() -> None:
    exact = PNG + b"\x00" * (1000 - len(PNG))
    assert image_block(as_data_url(exact), param=P, limits=LIMITS)["type"] == "image"
    assert refused(as_data_url(exact + b"\x00")).code == "image_too_large"
    # Far too long: refused on its length, even though it is not valid base64 at all.
    assert refused("data:image/png;base64," + "!" * 5000).code == "image_too_large"
    with pytest.raises(InvalidRequestError, match="limit of 1000 bytes"):
        data_url(exact + b"\x00", param=P, limits=LIMITS)


@given(st.binary(max_size=600))
def test_data_url_round_trips_through_image_block(tail: bytes) -> None:
    url = data_url(PNG[:8] + tail, param=P, limits=LIMITS)
    block = image_block(url, param=P, limits=LIMITS)
    assert base64.b64decode(block["source"]["data"]) == PNG[:8] + tail


@given(st.text(max_size=200))
def test_any_text_after_the_prefix_is_a_block_or_a_400(payload: str) -> None:
    try:
        block = image_block("data:image/png;base64," + payload, param=P, limits=LIMITS)
    except InvalidRequestError as exc:
        assert exc.status_hint == 400 and exc.param == P
    else:
        assert sniff_media_type(base64.b64decode(block["source"]["data"])) is not None


# ---- in the prompt ------------------------------------------------------------------------

OPTS = PlanOptions(executable="claude", cwd="/ws", images=LIMITS)


def blocks(messages: list[dict[str, Any]], options: PlanOptions = OPTS) -> list[dict[str, Any]]:
    request = structure_request(json.dumps({"model": "sonnet", "messages": messages}))
    inv = plan_invocation(request, options, inherited_env={})
    return json.loads(inv.stdin)["message"]["content"]  # type: ignore[no-any-return]


def img(data: bytes = PNG) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": as_data_url(data), "detail": "high"}}


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def test_images_of_the_last_message_stay_in_order_between_text_blocks() -> None:
    content = [text("Compare"), text("these:"), img(PNG), text("and"), img(GIF), text(" ")]
    got = blocks([{"role": "system", "content": "s"}, {"role": "user", "content": content}])
    assert [b["type"] for b in got] == ["text", "image", "text", "image"]
    assert got[0]["text"] == "Compare\nthese:" and got[2]["text"] == "and"
    assert [b["source"]["media_type"] for b in got if b["type"] == "image"] == ["image/png", "image/gif"]


def test_an_image_alone_is_a_turn() -> None:
    got = blocks([{"role": "user", "content": [img()]}])
    assert [b["type"] for b in got] == ["image"]


def test_earlier_history_comes_first_then_the_images() -> None:
    got = blocks([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                  {"role": "user", "content": [img(), text("what is it?")]}])
    assert [b["type"] for b in got] == ["text", "image", "text"]
    assert got[0]["text"].startswith("<conversation_history>")


def test_an_image_in_an_earlier_message_is_a_400() -> None:
    with pytest.raises(InvalidRequestError) as info:
        blocks([{"role": "user", "content": [text("see"), img()]},
                {"role": "assistant", "content": "ok"}, {"role": "user", "content": "and?"}])
    assert info.value.param == "messages[0].content[1]"
    assert "last user message" in info.value.message


def test_too_many_images_and_a_bad_one_name_the_part() -> None:
    with pytest.raises(InvalidRequestError) as info:
        blocks([{"role": "user", "content": [img(), img(), img()]}])
    assert info.value.param == "messages[0].content" and info.value.code == "too_many_images"
    bad = {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}}
    with pytest.raises(InvalidRequestError) as info:
        blocks([{"role": "system", "content": "s"}, {"role": "user", "content": [text("x"), bad]}])
    assert info.value.param == "messages[1].content[1]" and info.value.code == "invalid_base64"


def test_no_images_allowed_at_all() -> None:
    none = PlanOptions(executable="claude", cwd="/ws", images=ImageLimits(max_count=0))
    with pytest.raises(InvalidRequestError, match="at most 0"):
        blocks([{"role": "user", "content": [img()]}], none)
    assert blocks([{"role": "user", "content": [text("just text")]}], none) == [text("just text")]
