"""How an exception reads in a one-line error message."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters of it), or the type alone."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__
