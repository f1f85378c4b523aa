"""ccproto: the sans-IO core of ccserver.

OpenAI Chat Completions requests become Claude Code CLI invocations (`plan_invocation`);
the CLI's stream-json stdout becomes records (`CLIStream`), turn events (`Turn`) and
OpenAI chunks (`ChunkBuilder`, `collect`). No I/O, clock or randomness: the caller passes
ids, timestamps and the environment in.
"""

from __future__ import annotations

from .chunks import ChunkBuilder, collect, finish_reason, openai_usage
from .cli_types import (
    AssistantMessage,
    ControlResponse,
    Exit,
    NonJSONLine,
    Record,
    Result,
    StreamEvent,
    SystemEvent,
    SystemInit,
    UnknownRecord,
    UserMessage,
    parse_record,
)
from .converter import dumps, make_converter, structure_request
from .errors import CLIError, InvalidRequestError, ProtocolError
from .history import Turn as HistoryTurn
from .history import fingerprint, munge_cwd, request_history, seed_transcript, seedable
from .openai_types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Model,
    ModelList,
)
from .plan import Invocation, PlanOptions, SessionPlan, plan_invocation, resolve_model
from .prompt import Prompt, build_prompt, user_line
from .sse import DONE, KEEPALIVE, encode_data
from .stream import DEFAULT_MAX_LINE_SIZE, NEED_DATA, CLIStream
from .turn import (
    ReasoningDelta,
    TextDelta,
    TokenUsage,
    Turn,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    TurnState,
)

__all__ = [
    "DEFAULT_MAX_LINE_SIZE",
    "DONE",
    "KEEPALIVE",
    "NEED_DATA",
    "AssistantMessage",
    "CLIError",
    "CLIStream",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChunkBuilder",
    "ControlResponse",
    "Exit",
    "HistoryTurn",
    "InvalidRequestError",
    "Invocation",
    "Model",
    "ModelList",
    "NonJSONLine",
    "PlanOptions",
    "Prompt",
    "ProtocolError",
    "ReasoningDelta",
    "Record",
    "Result",
    "SessionPlan",
    "StreamEvent",
    "SystemEvent",
    "SystemInit",
    "TextDelta",
    "TokenUsage",
    "Turn",
    "TurnEvent",
    "TurnFailed",
    "TurnFinished",
    "TurnState",
    "UnknownRecord",
    "UserMessage",
    "build_prompt",
    "collect",
    "dumps",
    "encode_data",
    "fingerprint",
    "finish_reason",
    "make_converter",
    "munge_cwd",
    "openai_usage",
    "parse_record",
    "plan_invocation",
    "request_history",
    "resolve_model",
    "seed_transcript",
    "seedable",
    "structure_request",
    "user_line",
]
