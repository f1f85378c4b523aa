"""Exception groups: the one policy, and the three functions that apply it."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["find_leaf", "raise_single", "unwrap_single"]

E = TypeVar("E", bound=BaseException)


# -- Exception groups: the one policy -----------------------------------------------------
#
# Trio's nurseries are strict: whatever escapes one arrives in an exception group, one
# level per nursery it crossed, even a single error. A handler two nurseries deep that
# raises ConversationNotFound reaches the boundary as a group of a group of one. The
# server's rule, everywhere:
#
#     A group of one error is that error. A group of several stays a group.
#
# Several errors are never narrowed to one of them, which would hide the others: they go
# on as the group, and at a response boundary become a 500 whose log shows every one.
# Three functions apply the rule, one for each kind of site:
#
# - `unwrap_single`, where an error becomes an answer (app.py's HTTP boundary, the
#   WebSocket error frame): every group of one is stripped, at any depth, and the lone
#   error is mapped. The site judges what it found: a lone Cancelled or KeyboardInterrupt
#   is not an error to answer.
# - `raise_single`, where a context manager re-raises through its own nursery
#   (proc/spawn.py): only the level that nursery added is stripped, and the very object
#   is raised with its own ``__context__``. asynccontextmanager recognises the exception
#   it threw into the generator by identity, and a caller's ``except`` must match it;
#   a group one level down is the block's own and passes unchanged.
# - `find_leaf`, at the process's edge (__main__): the outcome there is a message and an
#   exit status, not a re-raise, so it may read the leaves of a group of several for a
#   known error (the OSError of a failed bind).


def unwrap_single(exc: BaseException) -> BaseException:
    """The lone exception inside ``exc``: groups of one stripped at any depth.

    A plain exception comes back as it is, and so does ``exc`` itself when it holds
    several exceptions at any level (never an inner group of it: the outer one is what
    was raised, and a log of it shows everything).
    """
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    return exc if isinstance(inner, BaseExceptionGroup) else inner


def raise_single(group: BaseExceptionGroup[BaseException]) -> None:
    """Raise the one exception ``group`` holds, if it holds one; else return.

    Call it from the ``except`` clause that caught ``group``, then ``raise``: a group of
    several goes on unchanged. The member is raised as the same object, one level only,
    and its ``__context__`` is put back, since raising it inside the handler would
    otherwise make the group it came from its context.
    """
    if len(group.exceptions) != 1:
        return
    exc = group.exceptions[0]
    context = exc.__context__
    # This frame stays in exc's traceback: it must not keep the discarded group alive.
    del group
    try:
        raise exc
    finally:
        exc.__context__ = context


def find_leaf(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of type ``kind`` in ``exc``, or in its groups' leaves depth
    first; None when there is none. ``exc`` itself may be one."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := find_leaf(inner, kind)) is not None:
                return found
    return None
