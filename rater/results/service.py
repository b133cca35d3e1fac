"""Load the study's results from the database (read-only).

The analysis dataset is the ``sessions`` export's table (:func:`rater.export.service.build`):
one row per eligible session, submitted main and double ratings (never calibration), items
resolved across raters — the pair mean of a double-coded session by default, as in the
reference study, or consensus scores where there are any — scale scores by the instruments'
own scoring (``Instrument.scale_scores``), PHQ-9 from the session catalogue. The R script
reads the same export, so it refits the very data the page shows.

Fitting the model sequence takes seconds, so a results object is kept per content of its
inputs (a hash of the dataset, the instrument versions and the choice): a page and its
downloads, or a second look, compute it once, and a change to any rating changes the key.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import pandas as pd

from rater.export import service as exports
from rater.export.tables import RESOLVE_MEANINGS
from rater.instruments import Instrument
from rater.results.report import Results, check_choice, default_choice, results

RESOLVE_CHOICES = ("mean", "consensus")
DEFAULT_RESOLVE = "mean"  # the reference study analyses the pair mean of each item
CACHE_SIZE = 8

_cache: OrderedDict[str, Results] = OrderedDict()
_lock = threading.Lock()


def instruments() -> list[Instrument]:
    """The latest stored version of every instrument."""
    return [v.instrument for v in exports.instruments()]


def check_variables(outcome: str, predictors: Sequence[str]) -> None:
    """Raise :class:`rater.results.report.ChoiceError` unless the variables may be modelled."""
    check_choice(instruments(), outcome, predictors)


def _versions() -> list[tuple[Instrument, int]]:
    return [(v.instrument, v.version) for v in exports.instruments()]


def load_results(
    outcome: str | None = None,
    predictors: Sequence[str] | None = None,
    resolve: str = DEFAULT_RESOLVE,
) -> Results:
    """The results of the submitted ratings; the default outcome and predictors are the
    reference study's (:func:`rater.results.report.default_choice`).

    Raises ``ValueError`` (a :class:`rater.results.report.ChoiceError` for a variable) with a
    message for users when the resolution or a variable is not one of the choices."""
    if resolve not in RESOLVE_CHOICES:
        raise ValueError(f"resolve must be one of {', '.join(RESOLVE_CHOICES)}")
    versions = _versions()
    found = [inst for inst, _ in versions]
    if outcome is None:
        outcome, chosen = default_choice(found)
        predictors = chosen if predictors is None else predictors
    predictors = list(predictors or [])
    check_choice(found, outcome, predictors)
    data = exports.build("sessions", exports.Options(resolve=resolve))
    key = _key(data, versions, outcome, predictors, resolve)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    made = results(data, found, outcome, predictors, resolve, RESOLVE_MEANINGS[resolve])
    with _lock:
        _cache[key] = made
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return made


def _key(
    data: pd.DataFrame,
    versions: Sequence[tuple[Instrument, int]],
    outcome: str,
    predictors: Sequence[str],
    resolve: str,
) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    digest.update(repr(list(data.columns)).encode())
    digest.update(repr([(inst.code, version) for inst, version in versions]).encode())
    digest.update(repr((outcome, tuple(predictors), resolve)).encode())
    return digest.hexdigest()
