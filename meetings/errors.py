"""Domain errors. ``server/`` maps each class to an HTTP status and a WebSocket error code."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose.

    ``code`` is a stable machine-readable identifier; ``message`` is English text for logs and
    API clients (the web UI shows its own translation keyed by ``code``).
    """

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Invalid(DomainError):
    code = "invalid"


class Conflict(DomainError):
    code = "conflict"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float):
        super().__init__(message, details={"retry_after_s": round(retry_after_s, 1)})
        self.retry_after_s = retry_after_s
