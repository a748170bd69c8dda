"""Errors a user can cause, and the one table that maps them to HTTP status.

Library code raises these; the runtime and the gateway turn them into a JSON
``{"error": ...}`` response with the status below (KServe's exception table,
with one handler instead of one per class).
"""


class ScalezeroError(Exception):
    """Base class: ``str(err)`` is the message shown to the user."""

    status = 500
    retry_after_s: float | None = None

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class BadRequest(ScalezeroError):
    status = 400


class Unauthorized(ScalezeroError):
    status = 401


class FunctionNotFound(ScalezeroError):
    status = 404


class Conflict(ScalezeroError):
    status = 409


class PayloadTooLarge(ScalezeroError):
    status = 413


class HeadersTooLarge(ScalezeroError):
    status = 431


class Overloaded(ScalezeroError):
    status = 429
    retry_after_s = 1.0


class InsufficientStorage(ScalezeroError):
    status = 507
    retry_after_s = 5.0


class BadGateway(ScalezeroError):
    status = 502


class NotReady(ScalezeroError):
    status = 503
    retry_after_s = 1.0


class UpstreamTimeout(ScalezeroError):
    status = 504


class ConfigError(ScalezeroError):
    """Invalid configuration (stack.yml, environment, flags); the CLI exits 2."""

    status = 400


def error_body(err: BaseException) -> dict:
    """The JSON body every error response carries."""
    return {"error": str(err)}


def error_headers(err: ScalezeroError) -> dict[str, str]:
    """Headers that go with an error response (``Retry-After`` for 429/503)."""
    if err.retry_after_s is None:
        return {}
    return {"Retry-After": str(max(1, round(err.retry_after_s)))}
