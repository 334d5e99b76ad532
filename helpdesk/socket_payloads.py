"""What a client may send with a Socket.IO event: one declarative shape per event, checked in one
place before any handler runs (``helpdesk.realtime.IsolatedNamespace``).

A handler declares its payload with :func:`accepts`::

    @accepts(ticket_id=Id(required=True), text=Text(5000, required=True))
    def on_chat_send(self, data): ...

and receives a ``dict`` holding exactly the declared keys, each of the declared type, or
``None`` (the field's default) for an optional one the client left out or sent as ``null``.
Keys not declared are ignored. Anything else never reaches the handler: the client gets an
error acknowledgement in the shape of the HTTP JSON errors (``helpdesk/web/errors.py``), a
translated message next to a machine-readable ``code``::

    {"ok": false, "code": "missing", "field": "ticket_id", "error": "ticket_id is required."}

Codes: ``bad_payload`` (not one JSON object), ``missing``, ``invalid`` (wrong type, out of range,
not one of the choices), ``too_long`` (text or list over its limit), ``nul_character``. The
handlers add their own (docs/chat-protocol.md, "Errors").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from helpdesk.i18n import _
from helpdesk.services.errors import ServiceError

# The largest id a database integer column holds: a larger one is "invalid", never a driver error.
MAX_ID = 2**31 - 1

F = TypeVar("F", bound=Callable[..., Any])


class PayloadError(ServiceError):
    """A payload that does not have its event's shape; ``field`` names the key at fault."""

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field

    def ack(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": False, "code": self.code, "error": str(self)}
        if self.field is not None:
            answer["field"] = self.field
        return answer


def error_ack(exc: ServiceError, **extra: Any) -> dict[str, Any]:
    """The acknowledgement of a refused event: ``{ok: false, code, error}`` (+ ``extra``)."""
    if isinstance(exc, PayloadError):
        return {**exc.ack(), **extra}
    return {"ok": False, "code": exc.code, "error": str(exc), **extra}


@dataclass(frozen=True)
class Field:
    """One key of a payload. ``check`` returns the value to hand over or raises PayloadError.

    ``nullable``: ``null`` is a value of its own (the handler gets ``None``) and a key left out
    is left out of ``data`` too, so the handler can tell "reset" from "unchanged"."""

    required: bool = False
    nullable: bool = False

    def check(self, key: str, value: Any) -> Any:  # pragma: no cover - every kind overrides
        raise NotImplementedError

    @staticmethod
    def invalid(key: str) -> PayloadError:
        return PayloadError(_("%(field)s is not valid.", field=key), code="invalid", field=key)


@dataclass(frozen=True)
class Int(Field):
    """A whole number from ``min`` to ``max`` (JSON true/false are not numbers)."""

    min: int = 0
    max: int = MAX_ID

    def check(self, key: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.invalid(key)
        if not self.min <= value <= self.max:
            raise self.invalid(key)
        return value


def Id(*, required: bool = False) -> Int:
    """A row's id: 1 to the largest value an id column holds."""
    return Int(required=required, min=1, max=MAX_ID)


@dataclass(frozen=True)
class Bool(Field):
    def check(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.invalid(key)
        return value


@dataclass(frozen=True)
class Str(Field):
    """Text of at most ``max_length`` characters. Longer text is refused with ``too_long``
    (``too_long`` is its message, given the limit), or cut to the limit with ``clip`` (for what
    the client does not type itself, like a page's address). ``choices``: one of these."""

    max_length: int = 5000
    clip: bool = False
    choices: tuple[str, ...] = ()
    too_long: Callable[[int], str] | None = None

    def check(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.invalid(key)
        if "\x00" in value:
            raise PayloadError(
                _("Text may not contain NUL characters."), code="nul_character", field=key
            )
        if len(value) > self.max_length:
            if self.clip:
                value = value[: self.max_length]
            else:
                message = (
                    self.too_long(self.max_length)
                    if self.too_long
                    else _("%(field)s is too long: at most %(n)d characters.", field=key,
                           n=self.max_length)
                )  # fmt: skip
                raise PayloadError(message, code="too_long", field=key)
        if self.choices and value not in self.choices:
            raise self.invalid(key)
        return value


@dataclass(frozen=True)
class Ids(Field):
    """A list of at most ``max_items`` ids."""

    max_items: int = 10

    def check(self, key: str, value: Any) -> list[int]:
        if not isinstance(value, list):
            raise self.invalid(key)
        if len(value) > self.max_items:
            raise PayloadError(
                _("%(field)s has too many items: at most %(n)d.", field=key, n=self.max_items),
                code="too_long",
                field=key,
            )
        item = Id()
        return [item.check(key, v) for v in value]


@dataclass(frozen=True)
class Shape:
    fields: dict[str, Field]

    def validate(self, args: tuple[Any, ...]) -> dict[str, Any]:
        """The event's arguments (a client sends one: the payload) as the handler's ``data``."""
        if len(args) != 1 or not isinstance(args[0], dict):
            raise PayloadError(_("The request was not understood."), code="bad_payload")
        payload: dict[str, Any] = args[0]
        data: dict[str, Any] = {}
        for key, field in self.fields.items():
            value = payload.get(key)
            if field.nullable and not field.required:
                if key in payload:
                    data[key] = None if value is None else field.check(key, value)
                continue
            if value is None:
                if field.required:
                    raise PayloadError(
                        _("%(field)s is required.", field=key), code="missing", field=key
                    )
                data[key] = None
            else:
                data[key] = field.check(key, value)
        return data


SHAPE_ATTRIBUTE = "payload_shape"


def accepts(**fields: Field) -> Callable[[F], F]:
    """Declare the payload of the event handled by the decorated handler."""

    def mark(fn: F) -> F:
        setattr(fn, SHAPE_ATTRIBUTE, Shape(dict(fields)))
        return fn

    return mark


def shape_of(handler: Any) -> Shape | None:
    shape = getattr(handler, SHAPE_ATTRIBUTE, None)
    return shape if isinstance(shape, Shape) else None
