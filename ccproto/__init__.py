"""ccproto: the sans-IO core of ccserver.

OpenAI Chat Completions requests become Claude Code CLI invocations (`plan_invocation`);
the CLI's stream-json stdout becomes records (`CLIStream`), turn events (`Turn`) and
OpenAI chunks (`ChunkBuilder`, `collect`). No I/O, clock or randomness: the caller passes
ids, timestamps and the environment in. Every client body or frame is decoded by
`load_object` alone (jsonbody.py); error messages quote client input through `excerpt`.
"""

from __future__ import annotations

from .chunks import ChunkBuilder, collect, finish_reason, openai_usage
from .cli_types import (
    AssistantMessage,
    ControlRequest,
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
from .events import (
    ReasoningDelta,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallsRequested,
    ToolCallStart,
    TurnEvent,
    TurnFailed,
    TurnFinished,
)
from .history import (
    Fingerprint,
    HistoryMessage,
    fingerprint,
    munge_cwd,
    request_history,
    seed_transcript,
    seedable,
    tool_calls_part,
    tool_result_entries,
    tool_results,
)
from .images import ImageLimits, check_image_count, data_url, image_block, sniff_media_type
from .jsonbody import MAX_DEPTH, excerpt, load_object
from .mcp import (
    CallCancelled,
    CallIdResolver,
    ToolCallRequest,
    interrupt_line,
    tool_error_line,
    tool_result_line,
)
from .mcp import answer as mcp_answer
from .openai_types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ImagePart,
    Message,
    Model,
    ModelList,
)
from .params import check_metadata
from .plan import (
    Invocation,
    PlanOptions,
    ProcessKey,
    SessionPlan,
    model_names,
    plan_invocation,
    request_tools,
    resolve_model,
    resolve_profile,
    resuming_answered_calls,
)
from .policy import CLI_MODEL_ALIASES, DEFAULT_TOOLS, LEAN_SUFFIX, PROFILES, valid_models
from .prompt import Prompt, build_prompt, new_turn_start, user_line
from .responses import ResponseBuilder, responses_usage
from .responses_input import ResponsesRequest, chat_request, structure_responses_request
from .sse import DONE, KEEPALIVE, encode_data, encode_event
from .stream import DEFAULT_MAX_LINE_SIZE, NEED_DATA, CLIStream
from .tools import (
    ClientTool,
    JsonSchemaFormat,
    ToolSet,
    client_tools,
    normalize_schema,
    output_format,
)
from .turn import Turn
from .turn_state import TurnState
from .ws import ws_error

__all__ = [
    "CLI_MODEL_ALIASES",
    "DEFAULT_MAX_LINE_SIZE",
    "DEFAULT_TOOLS",
    "DONE",
    "KEEPALIVE",
    "LEAN_SUFFIX",
    "MAX_DEPTH",
    "NEED_DATA",
    "PROFILES",
    "AssistantMessage",
    "CLIError",
    "CLIStream",
    "CallCancelled",
    "CallIdResolver",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChunkBuilder",
    "ClientTool",
    "ControlRequest",
    "ControlResponse",
    "Exit",
    "Fingerprint",
    "HistoryMessage",
    "ImageLimits",
    "ImagePart",
    "InvalidRequestError",
    "Invocation",
    "JsonSchemaFormat",
    "Message",
    "Model",
    "ModelList",
    "NonJSONLine",
    "PlanOptions",
    "ProcessKey",
    "Prompt",
    "ProtocolError",
    "ReasoningDelta",
    "Record",
    "ResponseBuilder",
    "ResponsesRequest",
    "Result",
    "SessionPlan",
    "StreamEvent",
    "SystemEvent",
    "SystemInit",
    "TextDelta",
    "TokenUsage",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallRequest",
    "ToolCallStart",
    "ToolCallsRequested",
    "ToolSet",
    "Turn",
    "TurnEvent",
    "TurnFailed",
    "TurnFinished",
    "TurnState",
    "UnknownRecord",
    "UserMessage",
    "build_prompt",
    "chat_request",
    "check_image_count",
    "check_metadata",
    "client_tools",
    "collect",
    "data_url",
    "dumps",
    "encode_data",
    "encode_event",
    "excerpt",
    "fingerprint",
    "finish_reason",
    "image_block",
    "interrupt_line",
    "load_object",
    "make_converter",
    "mcp_answer",
    "model_names",
    "munge_cwd",
    "new_turn_start",
    "normalize_schema",
    "openai_usage",
    "output_format",
    "parse_record",
    "plan_invocation",
    "request_history",
    "request_tools",
    "resolve_model",
    "resolve_profile",
    "responses_usage",
    "resuming_answered_calls",
    "seed_transcript",
    "seedable",
    "sniff_media_type",
    "structure_request",
    "structure_responses_request",
    "tool_calls_part",
    "tool_error_line",
    "tool_result_entries",
    "tool_result_line",
    "tool_results",
    "user_line",
    "valid_models",
    "ws_error",
]
