"""Planning a request's CLI process before its conversation is known.

`open_turn` plans twice per request, and no more: here, once, before the conversation
is decided, so a bad request changes no conversation and the pool learns the request's
shape (to take a warm process and keep more of that shape); and once the conversation
is decided, because only then are the session (new or resumed, its id and directory),
the conversation's model and system prompt, and so the prompt's earlier turns known.
"""

from __future__ import annotations

import attrs

from ccproto import ChatCompletionRequest, Message, ProcessKey, SessionPlan, plan_invocation

from ..pool.pooled import Fresh, ProcessPlan
from .context import TurnServices

__all__ = ["PROFILE_HEADER", "planner", "with_profile"]

#: The request header that picks a request's profile ("full" or "lean"), for clients
#: that can add headers but not body fields; a ``profile`` body field wins over it.
PROFILE_HEADER = "x-ccserver-profile"

# Any session will do for the shape: the process key leaves the session's flags out.
# Without one the plan would be stateless (``--no-session-persistence``), another shape.
_ANY_SESSION = SessionPlan(session_id="-", resume=False, cwd="")


def planner(services: TurnServices, request: ChatCompletionRequest) -> tuple[ProcessKey, Fresh]:
    """The shape of ``request``'s process, and how to plan one for a new conversation.

    Raises:
        InvalidRequestError: the request cannot run (its earlier turns aside).
    """
    options, environ = services.options, services.environ
    system = tuple(m for m in request.messages if m.role in ("system", "developer"))
    opening = attrs.evolve(request, messages=(*system, request.messages[-1]),
                           conversation_id=None)
    # The one plan: it checks the last turn (its images too) and gives the shape, since
    # the argv and env do not depend on the prompt.
    shape = plan_invocation(opening, options, inherited_env=environ,
                            session=_ANY_SESSION).process_key
    # Warm processes keep no image bytes: planned later, with the text only.
    opening = attrs.evolve(opening, messages=(*system, _text_only(request.messages[-1])))
    records = services.records

    def fresh() -> ProcessPlan:
        identity = records.new_identity()
        session = SessionPlan(session_id=identity.session_id, resume=False, cwd=identity.cwd)
        return ProcessPlan(
            inv=plan_invocation(opening, options, inherited_env=environ, session=session),
            conversation_id=identity.conversation_id, session_id=identity.session_id,
            own_cwd=identity.own_cwd)

    return shape, fresh


def with_profile(request: ChatCompletionRequest, header: str | None) -> ChatCompletionRequest:
    """``request`` with the profile its surface's header named, unless its body named one
    (as ``conversation_id`` and ``x-conversation-id``); the planner checks the value."""
    if header is None or request.profile is not None:
        return request
    return attrs.evolve(request, profile=header.strip().lower())


def _text_only(message: Message) -> Message:
    return attrs.evolve(message, content="-")
