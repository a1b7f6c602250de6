"""The small vocabulary an adapter uses to classify a provider's answer.

The adapter classifies; the core decides. Back-off, pacing, dead letters and marking a subscriber
gone live once, in ``broadcast.delivery``. Any other exception escaping ``send`` is a bug: the core
logs it and treats it as retry-later until the attempts run out.
"""


class ChannelError(Exception):
    """Base class of every classified send outcome that is not a receipt."""


CHANNEL = "channel"  # the refusal holds for every send of the channel (account-wide limit)
TARGET = "target"  # it holds for this one recipient only (a per-chat or per-number limit)


class RetryLater(ChannelError):
    """Temporary failure (rate limit, 5xx, timeout); ``retry_after`` in seconds if the provider
    said how long to wait.

    ``scope`` says whom the refusal concerns. ``"channel"`` (the default, and the safe guess):
    the core pauses the channel's whole lane for ``retry_after``. ``"target"``: only this
    delivery (and other sends to the same address) wait; the lane carries on with everybody
    else, so one busy chat cannot slow a broadcast to ten thousand others.
    """

    def __init__(self, reason: str, retry_after: float | None = None, scope: str = CHANNEL):
        if scope not in (CHANNEL, TARGET):
            raise ValueError(f"scope must be {CHANNEL!r} or {TARGET!r}, not {scope!r}")
        super().__init__(reason)
        self.retry_after = retry_after
        self.scope = scope


class PermanentFailure(ChannelError):
    """The provider refused this message for good; retrying cannot help."""


class CredentialsRevoked(PermanentFailure):
    """The provider no longer accepts the channel's credentials (an expired or revoked token):
    this send failed, and every later one fails at once without calling the provider, until an
    operator sets new credentials and restarts the service."""


class RecipientGone(PermanentFailure):
    """The recipient cannot be reached any more (blocked bot, STOP, invalid number)."""


class TargetMoved(ChannelError):
    """The target has a new address (Telegram "chat migrated"); the core stores it and retries."""

    def __init__(self, reason: str, new_address: str):
        super().__init__(reason)
        self.new_address = new_address


# What a provider's client library raises on an answer it cannot read: not JSON, JSON of another
# shape, cut off. The message may have gone out, so it is retry-later (as timeouts are).
UNREADABLE_ANSWER = (ValueError, KeyError, TypeError, AttributeError, IndexError)


def unreadable_answer(provider: str, exc: Exception) -> RetryLater:
    """A provider's answer that could not be read; only the exception's class, never its text
    (a client library may quote the answer, which can name the recipient)."""
    return RetryLater(f"{provider} answered something unreadable: {type(exc).__name__}")


class NotConfigured(Exception):
    """Raised at start-up by an adapter whose settings are missing; the channel stays off."""


# --- what the core refuses to an inbound adapter ---------------------------------------------


class Refused(Exception):
    """Base of the refusals ``InboundHooks`` raise for a resident's request. The adapter answers
    the resident in its own words; any other exception from a hook is a fault."""


class AlreadySubscribed(Refused):
    """The core refuses a second subscription of the address."""


class UnknownArea(Refused):
    """A postcode or area code that is not in the municipality."""


class InvalidInput(Refused):
    """The core does not accept the request as given (an address it cannot use)."""
