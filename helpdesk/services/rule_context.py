"""Which automation rule is acting right now, for the records its actions leave.

While a rule's actions run (services/rules.py), :func:`acting` holds the rule: the history
entries written meanwhile say which rule changed what (``data["rule"]``), and the stream's
events carry the chain of rules that led to them (``data["rule_chain"]``), so a rule never fires
again on an event its own actions caused, and a chain of rules stops after a few links.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Acting:
    rule_id: int
    name: str
    # The rules that led here, this one last.
    chain: tuple[int, ...]

    def label(self) -> dict[str, object]:
        return {"id": self.rule_id, "name": self.name}


_current: ContextVar[Acting | None] = ContextVar("helpdesk_acting_rule", default=None)


@contextmanager
def acting(rule_id: int, name: str, chain: tuple[int, ...] = ()) -> Iterator[Acting]:
    acting = Acting(rule_id, name, (*chain, rule_id))
    token = _current.set(acting)
    try:
        yield acting
    finally:
        _current.reset(token)


def current() -> Acting | None:
    return _current.get()
