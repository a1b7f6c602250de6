"""Domain errors. Services raise them; ``broadcast.app`` maps them to HTTP once."""


class DomainError(Exception):
    status_code = 400
    extra: dict[str, object] = {}  # more fields of the API's error body, beside "detail"

    def __init__(self, detail: str, **values: object):
        """``detail`` may hold named values (``"%(left)s attempts left"``): the API answers the
        filled-in English, a page translates the template first (``message`` + ``values``)."""
        self.message, self.values = detail, values
        self.detail = detail % values if values else detail
        super().__init__(self.detail)


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    """The request is valid but the current state does not allow it."""

    status_code = 409


class Invalid(DomainError):
    status_code = 422


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class TooLarge(DomainError):
    """An upload over its size limit."""

    status_code = 413


class UnsupportedType(DomainError):
    """An upload whose content is not one of the accepted types (whatever its name says)."""

    status_code = 415


class TooManyRequests(DomainError):
    """A rate limit; ``retry_after`` (seconds) becomes the ``Retry-After`` header."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int | None = None, **values: object):
        super().__init__(detail, **values)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A feature that needs something that is not configured (a channel that is off)."""

    status_code = 503
