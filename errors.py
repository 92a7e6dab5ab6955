"""Domain errors: each carries a short message that is safe to show the user as it is."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot answers with its own message (ephemeral, no traceback)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(BotError):
    """A submission, handle or setting that does not exist."""


class InvalidTransitionError(BotError):
    """A state change the queue model forbids (moving a played song, approving a non-pending one)."""


class FreeLineClosedError(BotError):
    """The Free line is closed to new submissions."""


class ActiveFreeExistsError(BotError):
    """The user already has an active Free (or Pending) submission."""


class DuplicateSubmissionError(BotError):
    """The same link, or the same artist and title, is already active in the guild."""


class BlockedError(BotError):
    """A blocklist rule refuses the submission."""


class ValidationError(BotError):
    """User input that does not meet the rules (length, URL, handle, file)."""


class HandleOwnedError(BotError):
    """The TikTok handle is linked to another Discord user."""


class RateLimitedError(BotError):
    """The user must wait (cooldown or too many pending submissions)."""


class NotConnectedError(BotError):
    """There is no TikTok LIVE connection for the guild."""
