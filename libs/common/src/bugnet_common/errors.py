"""One error hierarchy; each error carries its status and stable code.

Only `web.register_error_handlers` turns these into response bodies.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    """An error a client caused or must be told about, rendered as the envelope."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal server error"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error": self.message, "code": self.code}
        if self.details:
            out["details"] = self.details
        return out


class BadRequest(ApiError):
    status, code, default_message = 400, "bad_request", "Bad request"


class ValidationFailed(ApiError):
    status, code, default_message = 400, "validation_error", "Validation failed"


class Unauthorized(ApiError):
    status, code, default_message = 401, "unauthorized", "Authentication required"


class Forbidden(ApiError):
    status, code, default_message = 403, "forbidden", "You are not allowed to do this"


class NotFound(ApiError):
    status, code, default_message = 404, "not_found", "Not found"


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "method_not_allowed", "Method not allowed"


class Conflict(ApiError):
    status, code, default_message = 409, "conflict", "Conflict"


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(ApiError):
    status, code, default_message = 415, "unsupported_media_type", (
        "Unsupported content type; send application/json"
    )


class RateLimited(ApiError):
    status, code, default_message = 429, "rate_limited", "Too many requests"


class BadGateway(ApiError):
    """An external service (GitHub, GitLab, Steam...) failed or answered nonsense."""

    status, code, default_message = 502, "bad_gateway", "An external service failed"


class ServiceUnavailable(ApiError):
    status, code, default_message = 503, "service_unavailable", "Service temporarily unavailable"
