"""One root for every error Omnigate raises on purpose, one subtree per port.

Built-ins are mixed in where they fit so callers that only know the standard library still catch them.
"""

from __future__ import annotations


class OmnigateError(Exception):
    """Root of every deliberate Omnigate error."""

    code = "error"


# -- input -----------------------------------------------------------------------------------------


class InvalidInput(OmnigateError, ValueError):
    """Input that can never be accepted as it is (a 4xx, or a quarantine record with the reason)."""

    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None):
        super().__init__(message)
        if code:
            self.code = code
        self.fields = fields or {}


class NotFound(OmnigateError, LookupError):
    code = "not_found"


class Conflict(OmnigateError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


# -- storage ---------------------------------------------------------------------------------------


class StorageUnavailable(OmnigateError, ConnectionError):
    """The database cannot be reached: webhooks answer 503 so the platform retries."""

    code = "storage_unavailable"


# -- channels --------------------------------------------------------------------------------------


class ChannelError(OmnigateError):
    """A channel could not deliver. `retryable` tells the outbox whether to try again."""

    code = "channel_error"
    retryable = True

    def __init__(self, message: str, *, platform_code: str | int | None = None):
        super().__init__(message)
        self.platform_code = platform_code


class ChannelUnavailable(ChannelError, ConnectionError):
    code = "channel_unavailable"


class RateLimited(ChannelError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, platform_code: str | int | None = None):
        super().__init__(message, platform_code=platform_code)
        self.retry_after = retry_after


class PermanentDeliveryError(ChannelError):
    """The platform said no for good (user unsubscribed, bad template, 5xx SMTP): no retry storm."""

    code = "permanent_delivery_error"
    retryable = False


class UnknownChannel(ChannelError, LookupError):
    code = "unknown_channel"
    retryable = False
