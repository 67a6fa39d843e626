"""Typed errors shared by every layer. The CLI maps each to one `error:` line and an exit code."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


class MsiError(Exception):
    """A domain error: the operation is not allowed, or the simulated platform refuses."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotFound(MsiError):
    """A named target does not exist."""

    exit_code = 3


class Ambiguous(MsiError):
    """A bare name matched several objects (a usage error: the command line must say which); the
    message lists their ids, the hint the option that tells them apart."""

    exit_code = 2


class Conflict(MsiError):
    """The object already exists, or the change contradicts the current state."""


class InvalidName(MsiError):
    """A name breaks Azure's naming rules for its type."""


class InvalidArgument(MsiError):
    """A value given on the command line cannot be used (bad duration, bad GUID...)."""

    exit_code = 2


class StateError(MsiError):
    """The state file cannot be read or written safely; nothing was changed."""


class OutputLost(MsiError):
    """Standard output refused what the command printed (a full disk, a descriptor the shell
    closed): not a bug, and whatever the command changed before then is kept."""

    def __init__(self, why: str) -> None:
        super().__init__(f"cannot write the output: {why}", hint="whatever the command changed before then is kept")


class TokenError(MsiError):
    """The simulated platform refuses to issue a token.

    `error` and `description` follow the IMDS error body; `status` is the HTTP status the
    endpoint answers with.
    """

    def __init__(self, error: str, description: str, status: int = 400, reason: str | None = None, code: str | None = None) -> None:
        super().__init__(f"{error}: {description}", hint=reason)
        self.code = code  # the cause, for hosts that word it their own way: no_identity, multiple, selector_miss, unknown_audience
        self.error = error
        self.description = description
        self.status = status
        self.reason = reason or description  # why, in the simulator's own words


# ---- text that reaches the terminal --------------------------------------------------------------

_UNSAFE: dict[int, str] | None = None


def printable(text: str) -> str:
    """`text` with every character that a terminal could act on written as an escape: C0 and C1
    controls and DEL (`\\x1b` starts colour and cursor sequences, `\\x9b` is CSI), lone surrogates
    (bytes that were not UTF-8, from argv or a file) and the invisible bidi and line-separator
    characters that reorder or split what is shown. Everything else is left as it is."""
    global _UNSAFE
    if _UNSAFE is None:
        unsafe = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
        for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
            unsafe[c] = f"\\u{c:04x}"
        _UNSAFE = unsafe
    out = text.translate(_UNSAFE)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in out):
        out = "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in out)
    return out


# Whether this command has saved a change: once it has, it reports success (a later problem, such
# as a --query that cannot be applied to the result, is a warning), because failure means no change.
_saved = False


def mark_saved() -> None:
    global _saved
    _saved = True


def saved() -> bool:
    return _saved


def start_command() -> None:
    global _saved
    _saved = False
    WARNINGS.clear()
    NOTICES.clear()


# Warnings raised below the CLI (a change that was saved, but a side effect that failed); the
# exception boundary prints them as `warning:` lines once the command ends. Bounded, so a
# long-running server cannot grow it without end.
WARNINGS: list[str] = []


def warn(message: str) -> None:
    if len(WARNINGS) < 20 and message not in WARNINGS:
        WARNINGS.append(message)


# Notes for a person at a terminal (a brand-new state file was made); the exception boundary
# prints them on stderr when it is a terminal, never into a script's captured output.
NOTICES: list[str] = []


def notice(message: str) -> None:
    if len(NOTICES) < 20 and message not in NOTICES:
        NOTICES.append(message)


@contextlib.contextmanager
def deep_input() -> Iterator[None]:
    """Around a parser that recurses (tomllib, json, jmespath) on input that may be nested past the
    recursion limit, whose RecursionError the caller turns into one error line: no garbage
    collection runs meanwhile. One set off by an allocation near the limit runs finalizers there,
    which fail too and print 'Exception ignored in ...' with their tracebacks beside that line."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
