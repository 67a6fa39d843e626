"""Typed errors shared by every layer. The CLI maps each to one `error:` line and an exit code."""

from __future__ import annotations


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
    """A bare name matched several objects; the message lists their ids."""

    exit_code = 1


class Conflict(MsiError):
    """The object already exists, or the change contradicts the current state."""


class InvalidName(MsiError):
    """A name breaks Azure's naming rules for its type."""


class InvalidArgument(MsiError):
    """A value given on the command line cannot be used (bad duration, bad GUID...)."""

    exit_code = 2


class StateError(MsiError):
    """The state file cannot be read or written safely; nothing was changed."""


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
