"""Failures members did not cause: one short sentence with a reference id for them, the
exception with the same id for the operators' log. Raw exception text never reaches chat
(it can carry paths, hosts or library internals)."""

from __future__ import annotations

import logging
import secrets


def reference() -> str:
    """A short id that ties a member's report to one log entry."""
    return secrets.token_hex(4)


def trouble(log: logging.Logger, error: BaseException, what: str, *where: object) -> str:
    """Log `error` under a new reference id (with what failed and where) and return the
    member's sentence, which names that id."""
    ref = reference()
    context = " ".join(str(w) for w in where)
    log.error("ref %s: %s failed (%s)", ref, what, context, exc_info=error)
    return f"Something went wrong on our side (ref {ref}); please try again in a moment."


def failed_sentence(ref: str) -> str:
    """What a failed render's status says (stored on the job row, shown by every adapter)."""
    return f"the render failed on our side (ref {ref}); please try again in a moment"
