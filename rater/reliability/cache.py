"""Reliability results cached per server process, under the data version they were computed from.

A result is computed once per data version (``rater.data_version``) and server process; every
change to submitted ratings, consensus, sessions or instruments raises the version in its own
transaction, so the next request of every process computes afresh. The version is read before
the data: a result may be computed from data newer than its version (a change committed in
between), never older, so a cached result is never staler than the version it is kept under.

The cache lives on the app (``app.extensions``): one per app and database. It keeps only the
newest version's results; a request that still sees an older version (a concurrent commit)
computes without caching.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import current_app

from rater import data_version
from rater.rating.frame import ratings_frame
from rater.reliability import consensus
from rater.reliability.report import ReliabilityReport

T = TypeVar("T")
EXTENSION = "rater.reliability_cache"


@dataclass
class _Store:
    version: int = -1
    results: dict[Hashable, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _store() -> _Store:
    return current_app.extensions.setdefault(EXTENSION, _Store())


def cached(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``'s result for the current data version, computed at most once per process
    and version (two simultaneous first requests may both compute; either result is right)."""
    store, version = _store(), data_version.current()
    with store.lock:
        if version > store.version:
            store.version, store.results = version, {}
        if version == store.version and key in store.results:
            return store.results[key]
    result = compute()
    with store.lock:
        if version == store.version:
            store.results[key] = result
    return result


def report(design: str = "all", instrument: str | None = None) -> ReliabilityReport:
    """``consensus.load_report`` through the cache (do not change the returned report)."""
    return cached(
        ("report", design, instrument),
        lambda: consensus.load_report(design=design, instrument=instrument),
    )


def disagreements() -> list[consensus.Disagreement]:
    """Double-coded sessions whose scores differ by their instrument's threshold or more."""
    return cached(
        ("disagreements",),
        lambda: consensus.disagreements(ratings_frame(), consensus.current_instruments()),
    )


def instrument_codes() -> frozenset[str]:
    """The codes of the current instruments (their definitions are parsed once per version)."""
    return cached(
        ("instrument codes",),
        lambda: frozenset(i.code for i in consensus.current_instruments()),
    )
