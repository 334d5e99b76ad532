"""Errors services raise for callers to turn into a 4xx or a CLI message."""

from __future__ import annotations


class ServiceError(Exception):
    """Something the user can fix; ``str(err)`` is a translated, user-facing message."""


class NotFound(ServiceError):
    """Missing *or* not visible to this actor: the two are deliberately indistinguishable."""


class Conflict(ServiceError):
    """The state changed under the caller (e.g. a stale ticket version)."""
