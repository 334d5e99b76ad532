"""Errors services raise for callers to turn into a 4xx or a CLI message."""

from __future__ import annotations


class ServiceError(Exception):
    """Something the user can fix; ``str(err)`` is a translated, user-facing message and
    ``code`` a stable, machine-readable name for it (what API clients branch on)."""

    code = "invalid"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    """Missing *or* not visible to this actor: the two are deliberately indistinguishable."""

    code = "not_found"


class Forbidden(ServiceError):
    """The actor may see this but not do it (a permission the actor lacks); ``str(err)`` says
    which permission."""

    code = "forbidden"


class Conflict(ServiceError):
    """The state changed under the caller (e.g. a stale ticket version)."""

    code = "conflict"
