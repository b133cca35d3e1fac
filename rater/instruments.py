"""Instrument files -> validated instrument objects, and scoring (pure: no Flask, no database).

An instrument is a TOML file in the instruments folder. It describes one observer scale or
coding sheet completely: its score range (``scale = { min = 0, max = 6 }``, 0-4 by default),
whether "not applicable" may be chosen, its items (ordinal items with verbal anchors on some or
all score points, nominal items with categories, counts, free text), subscales, scoring rules
(``mean``, ``sum``, ``cross_session_mean``, each with optional prorating), the homework and
difficulty type lists and its homework-log items. ``load_instrument`` validates one file and
names the file, the item and the field of every problem; ``load_instruments`` reads a folder.

Scoring lives here and nowhere else: :meth:`Instrument.keyed` turns a frame of item values into
the values that enter computed scores (reverse-keyed items as ``min + max - x``, "not applicable"
and missing as NaN), :meth:`Instrument.scale_scores` computes every scoring rule and subscale
score of a frame of ratings, and :func:`previous_session` lines up each row with the same
patient's session t-1 for the cross-session rules. Reliability, every export and the rating page
call these.

The version of an instrument is its content: ``content_hash`` is the SHA-256 of the file bytes,
so a change to the file makes a new version while existing ratings keep theirs.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rater.states import Role

Code = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=64)]
CategoryCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$", max_length=64)]

DEFAULT_MIN, DEFAULT_MAX = 0, 4  # the scale of an instrument file that names none
MAX_POINTS = 11  # an ordinal scale has 2 to 11 score points
DEFAULT_DISAGREEMENT_SHARE = 0.5  # 2 points on a 0-4 scale: half of the range


class ItemKind(StrEnum):
    """What an item records: an anchored score, a category, a count or free text."""

    ORDINAL = "ordinal"
    NOMINAL = "nominal"
    COUNT = "count"
    TEXT = "text"


NUMERIC_KINDS = (ItemKind.ORDINAL, ItemKind.COUNT)


class InstrumentError(ValueError):
    """An instrument file is invalid; ``problems`` lists every problem found."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(_Strict):
    """An integer score range ``min``..``max`` with 2 to 11 points."""

    min: int
    max: int

    @model_validator(mode="after")
    def _two_to_eleven_points(self) -> Scale:
        points = self.max - self.min + 1
        if not 2 <= points <= MAX_POINTS:
            raise ValueError(
                f"a scale needs 2 to {MAX_POINTS} score points, {self.min}-{self.max} has {points}"
            )
        return self

    @property
    def points(self) -> tuple[int, ...]:
        return tuple(range(self.min, self.max + 1))

    @property
    def span(self) -> int:
        return self.max - self.min

    def __str__(self) -> str:
        return f"{self.min}-{self.max}"


DEFAULT_SCALE = Scale(min=DEFAULT_MIN, max=DEFAULT_MAX)


class Item(_Strict):
    """One question. ``scale`` and ``not_applicable`` are resolved against the instrument's
    defaults when the instrument is validated, so every item carries its own."""

    code: Code
    label: str = Field(min_length=1)
    description: str = ""
    kind: ItemKind = ItemKind.ORDINAL
    scale: Scale | None = None  # ordinal items only
    anchors: dict[int, str] = Field(default_factory=dict)  # ordinal items only
    not_applicable: str | None = None  # the label of the N/A choice; None: not allowed
    categories: dict[CategoryCode, str] = Field(default_factory=dict)  # nominal items only
    multiple: bool = False  # nominal items: several categories may be chosen
    per_minute: bool = False  # count items: also reported as a rate per minute of audio
    subscale: str | None = None
    reverse: bool = False  # ordinal items: enters computed scores as min + max - x
    required: bool = True

    @field_validator("anchors")
    @classmethod
    def _anchors_have_text(cls, anchors: dict[int, str]) -> dict[int, str]:
        empty = sorted(p for p, text in anchors.items() if not text.strip())
        if empty:
            raise ValueError(f"anchors without text for score points {empty}")
        return anchors

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Item:
        kind = self.kind
        only = {
            "scale": (self.scale is not None, ItemKind.ORDINAL),
            "anchors": (bool(self.anchors), ItemKind.ORDINAL),
            "reverse": (self.reverse, ItemKind.ORDINAL),
            "categories": (bool(self.categories), ItemKind.NOMINAL),
            "multiple": (self.multiple, ItemKind.NOMINAL),
            "per_minute": (self.per_minute, ItemKind.COUNT),
        }
        wrong = [name for name, (given, wanted) in only.items() if given and kind != wanted]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} not allowed for a {kind} item")
        if kind == ItemKind.NOMINAL and len(self.categories) < 2:
            raise ValueError("a nominal item needs at least 2 categories")
        if kind == ItemKind.ORDINAL and self.scale is not None:
            outside = sorted(p for p in self.anchors if not self.scale.min <= p <= self.scale.max)
            if outside:
                raise ValueError(f"anchors given for score points outside {self.scale}: {outside}")
        return self

    # -- what an item accepts -------------------------------------------------------------

    @property
    def is_numeric(self) -> bool:
        """Ordinal and count items have numeric values that can enter computed scores."""
        return self.kind in NUMERIC_KINDS

    @property
    def allows_not_applicable(self) -> bool:
        return self.not_applicable is not None

    @property
    def points(self) -> tuple[int, ...]:
        """The score points of an ordinal item (empty for other kinds)."""
        return self.scale.points if self.scale is not None else ()

    def anchor(self, point: int) -> str:
        """The verbal anchor of a score point, or the number where the file gives none."""
        return self.anchors.get(point, str(point))

    def keyed(self, values: pd.Series) -> pd.Series:
        """Values as they enter computed scores: reverse-keyed as min + max - x."""
        if self.reverse and self.scale is not None:
            return self.scale.min + self.scale.max - values
        return values

    def value_problem(self, value: Any) -> str | None:
        """Why ``value`` is not a valid answer to this item, or None (N/A is checked apart).

        Ordinal: an integer of the item's scale; count: a whole number >= 0; nominal: a
        category code (a list of distinct codes when ``multiple``); text: a string.
        """
        if self.kind == ItemKind.ORDINAL:
            assert self.scale is not None
            if not _is_int(value) or not self.scale.min <= value <= self.scale.max:
                return f"must be an integer {self.scale}"
        elif self.kind == ItemKind.COUNT:
            if not _is_int(value) or value < 0:
                return "must be a whole number of 0 or more"
        elif self.kind == ItemKind.NOMINAL:
            return self._category_problem(value)
        elif not isinstance(value, str):
            return "must be text"
        return None

    def _category_problem(self, value: Any) -> str | None:
        if self.multiple:
            if not isinstance(value, list) or not value:
                return "must be a non-empty list of categories"
            chosen = value
        else:
            chosen = [value]
        if not all(isinstance(c, str) and c in self.categories for c in chosen):
            return f"must be one of the categories {', '.join(self.categories)}"
        if len(set(chosen)) != len(chosen):
            return "names a category twice"
        return None

    def allowed_text(self) -> str:
        """The allowed values in words, for codebooks and messages."""
        if self.kind == ItemKind.ORDINAL:
            return str(self.scale)
        if self.kind == ItemKind.COUNT:
            return ">=0"
        if self.kind == ItemKind.NOMINAL:
            return "|".join(self.categories)
        return "text"

    # -- answers: what a rating stores for the item -------------------------------------------

    def answer(self, value: Any) -> Answer | None:
        """A value as sent by the rating page or read from a file -> the stored answer.

        ``{"not_applicable": true}`` is N/A (where the item allows it); an ordinal or count item
        takes an integer, a nominal item a category code (``multiple``: a list of codes, stored
        in the file's order joined by ``;``), a text item a string (stored without surrounding
        white space; empty text is no answer, None).
        Raises ``ValueError`` naming what the item takes.
        """
        if _is_na(value):
            if not self.allows_not_applicable:
                raise ValueError("cannot be 'not applicable'")
            return NOT_APPLICABLE
        if self.kind == ItemKind.TEXT and isinstance(value, str):
            value = value.strip()  # as CSV imports read it
            if not value:
                return None
        if self.kind == ItemKind.NOMINAL and self.multiple and isinstance(value, str):
            value = value.split(CATEGORY_SEPARATOR)
        if problem := self.value_problem(value):
            raise ValueError(problem)
        if self.kind == ItemKind.NOMINAL and self.multiple:
            order = list(self.categories)
            return CATEGORY_SEPARATOR.join(sorted(value, key=order.index))
        return int(value) if self.is_numeric else value

    def protocol_value(self, answer: Answer) -> Any:
        """The stored answer as the rating page sends it (JSON)."""
        if answer is NOT_APPLICABLE:
            return {"not_applicable": True}
        if self.kind == ItemKind.NOMINAL and self.multiple:
            return str(answer).split(CATEGORY_SEPARATOR)
        return answer

    @staticmethod
    def columns(answer: Answer) -> tuple[int | None, str | None, bool]:
        """The stored answer as database columns (score, value_text, not_applicable)."""
        if isinstance(answer, _NotApplicable):
            return None, None, True
        if isinstance(answer, str):
            return None, answer, False
        return int(answer), None, False

    @staticmethod
    def from_columns(score: int | None, value_text: str | None, not_applicable: bool) -> Answer:
        """Database columns -> the stored answer (the inverse of :meth:`columns`)."""
        if not_applicable:
            return NOT_APPLICABLE
        return int(score) if score is not None else str(value_text)

    @staticmethod
    def answer_text(answer: Answer | None) -> str:
        """An answer for people: the number, category code(s) or text; "N/A"; "–" for none."""
        if answer is None:
            return "–"
        return "N/A" if answer is NOT_APPLICABLE else str(answer)

    def category_number(self, code: str) -> int:
        """A category's number (1, 2, ... in file order): its code in SPSS/Stata files and the
        value of nominal items in reliability."""
        return list(self.categories).index(code) + 1


class _NotApplicable:
    """The answer "not applicable" (one object; compare with ``is``)."""

    _instance: _NotApplicable | None = None

    def __new__(cls) -> _NotApplicable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_APPLICABLE"


NOT_APPLICABLE = _NotApplicable()
Answer = int | str | _NotApplicable
CATEGORY_SEPARATOR = ";"  # several categories of one answer (nominal items with ``multiple``)


def answer_json(answer: Answer | None) -> Any:
    """A stored answer as JSON (audit events): the number or text, N/A as
    ``{"not_applicable": true}``."""
    return {"not_applicable": True} if answer is NOT_APPLICABLE else answer


def _is_na(value: Any) -> bool:
    return isinstance(value, dict) and value == {"not_applicable": True}


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class Subscale(_Strict):
    code: Code
    label: str = Field(min_length=1)
    description: str = ""


class ScoreRule(StrEnum):
    MEAN = "mean"
    SUM = "sum"
    CROSS_SESSION_MEAN = "cross_session_mean"


class ScoringRule(_Strict):
    """A computed score.

    ``mean`` / ``sum``: the mean / sum of ``items`` within one rating (reverse-keyed items enter
    as min + max - x). ``cross_session_mean``: the mean of ``previous_items`` of session t-1 of
    the same patient and ``current_items`` of session t; missing when session t-1 is missing
    (never shifted). A score is computed when at most ``max_missing`` of its items are missing
    or not applicable (prorating): a mean over the items present, a sum prorated to all items
    (the mean of the items present times their number); otherwise it is missing.
    """

    code: Code
    label: str = Field(min_length=1)
    rule: ScoreRule
    items: list[str] = Field(default_factory=list)
    previous_items: list[str] = Field(default_factory=list)
    current_items: list[str] = Field(default_factory=list)
    max_missing: int = Field(default=0, ge=0)
    description: str = ""

    @model_validator(mode="after")
    def _items_fit_rule(self) -> ScoringRule:
        if self.rule in (ScoreRule.MEAN, ScoreRule.SUM):
            if not self.items:
                raise ValueError(f"rule '{self.rule}' needs 'items'")
            if self.previous_items or self.current_items:
                raise ValueError(f"rule '{self.rule}' takes 'items' only")
        elif not (self.previous_items and self.current_items) or self.items:
            raise ValueError("rule 'cross_session_mean' needs 'previous_items' and 'current_items'")
        if self.max_missing >= len(self.all_items):
            raise ValueError(
                f"max_missing must be below the number of items ({len(self.all_items)})"
            )
        return self

    @property
    def all_items(self) -> list[str]:
        return [*self.items, *self.previous_items, *self.current_items]

    @property
    def is_cross_session(self) -> bool:
        return self.rule == ScoreRule.CROSS_SESSION_MEAN


class LogKind(StrEnum):
    REPORTED_COMPLETED = "reported_completed"
    ASSIGNED_NEXT = "assigned_next"


class LogItem(_Strict):
    code: Code
    label: str = Field(min_length=1)
    kind: LogKind
    entered_by: Role
    description: str = ""


# Keys the rating page keeps for itself (player, scoring, navigation, notes, help): a behaviour
# code cannot take them. Digits score the focused item; j/k move; space plays; [ ] set the speed.
RESERVED_KEYS = frozenset(" 0123456789jknx?[]-=+")


class BehaviourCode(_Strict):
    """A behaviour code of a coding sheet: a coder records an event (a time, or a segment from
    a start to an end when ``segment``) whenever it occurs while listening."""

    code: Code
    label: str = Field(min_length=1)
    description: str = ""
    key: str = Field(min_length=1, max_length=1)
    group: Code | None = None
    segment: bool = False

    @field_validator("key")
    @classmethod
    def _key_is_free(cls, key: str) -> str:
        if key.lower() in RESERVED_KEYS or not key.isprintable():
            reserved = "".join(sorted(RESERVED_KEYS)).strip()
            raise ValueError(f"key {key!r} is kept by the rating page (space and {reserved})")
        return key


class SummaryRule(StrEnum):
    COUNT = "count"  # events of the codes (a sum when several codes or groups are named)
    RATE = "rate"  # the count per minute of audio
    RATIO = "ratio"  # count of the numerator / count of the denominator
    PERCENT = "percent"  # 100 x numerator / denominator
    DURATION = "duration"  # seconds covered by segments of the codes


class Summary(_Strict):
    """A summary measure of a rating's events. ``of``, ``numerator`` and ``denominator`` name
    codes or groups of codes."""

    code: Code
    label: str = Field(min_length=1)
    rule: SummaryRule
    of: list[str] = Field(default_factory=list)
    numerator: list[str] = Field(default_factory=list)
    denominator: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _operands_fit_rule(self) -> Summary:
        if self.rule in (SummaryRule.RATIO, SummaryRule.PERCENT):
            if not (self.numerator and self.denominator) or self.of:
                raise ValueError(f"rule '{self.rule}' needs 'numerator' and 'denominator'")
        elif not self.of or self.numerator or self.denominator:
            raise ValueError(f"rule '{self.rule}' needs 'of' (codes or groups)")
        return self

    @property
    def operands(self) -> list[str]:
        return [*self.of, *self.numerator, *self.denominator]


class MeasureKind(StrEnum):
    """What a measure is: an item, a scale score (a scoring rule), a subscale mean, a rate per
    minute of a count item, a count of a behaviour code, or a summary of events."""

    ITEM = "item"
    SCORE = "score"
    SUBSCALE = "subscale"
    RATE = "rate"
    CODE_COUNT = "code_count"
    SUMMARY = "summary"


@dataclass(frozen=True)
class Measure:
    """Anything reliability and exports treat as one value per rating.

    ``items`` are the items it is computed from (the item itself for an item measure; for a
    cross-session score, the items of session t, with ``previous_items`` those of t-1); for a
    measure of events, the codes or groups it counts.
    ``item_kind`` is the kind of the item for item and rate measures, else ``ordinal`` for
    scores of ordinal items and ``count`` for scores of counts. ``per_minute``: a rate per
    minute of the session's recording (missing where the recording's length is unknown).
    """

    instrument: str
    code: str
    kind: MeasureKind
    label: str
    items: tuple[str, ...]
    previous_items: tuple[str, ...] = ()
    item_kind: ItemKind = ItemKind.ORDINAL
    per_minute: bool = False

    @property
    def is_cross_session(self) -> bool:
        return bool(self.previous_items)


ITEM_BASED = (MeasureKind.SCORE, MeasureKind.SUBSCALE, MeasureKind.RATE)  # from item values
EVENT_BASED = (MeasureKind.CODE_COUNT, MeasureKind.SUMMARY)  # from coded events
RATE_SUFFIX = "_per_minute"
COUNT_SUFFIX = "_n"


class Instrument(_Strict):
    code: Code
    name: str = Field(min_length=1)
    description: str = ""
    scale: Scale = DEFAULT_SCALE
    not_applicable: str | None = None
    disagreement: float | None = Field(default=None, gt=0)
    items: list[Item] = Field(default_factory=list)
    subscales: list[Subscale] = Field(default_factory=list)
    scores: list[ScoringRule] = Field(default_factory=list)
    homework_types: list[str] = Field(default_factory=list)
    difficulty_types: list[str] = Field(default_factory=list)
    log_items: list[LogItem] = Field(default_factory=list)
    codes: list[BehaviourCode] = Field(default_factory=list)
    summaries: list[Summary] = Field(default_factory=list)
    tolerance: float = Field(default=2.0, gt=0, le=60)  # seconds: events of two coders match
    # Filled by the loader, not the file:
    source_file: str = ""
    content_hash: str = ""

    @model_validator(mode="before")
    @classmethod
    def _items_inherit_defaults(cls, raw: Any) -> Any:
        """An ordinal item without a scale takes the instrument's; ``not_applicable`` is
        inherited unless the item sets its own (a label) or ``false`` (no N/A for it)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            return raw
        scale = raw.get("scale", DEFAULT_SCALE)
        na = _na_label(raw.get("not_applicable"), None)
        items = []
        for item in raw["items"]:
            if isinstance(item, dict):
                item = dict(item)
                if item.get("kind", ItemKind.ORDINAL) == ItemKind.ORDINAL:
                    item.setdefault("scale", scale)
                item["not_applicable"] = _na_label(item.get("not_applicable", na), na)
            items.append(item)
        na_value = raw.get("not_applicable")
        top = na if isinstance(na_value, bool) else na_value
        return {**raw, "not_applicable": top, "items": items}

    @model_validator(mode="after")
    def _references_resolve(self) -> Instrument:
        problems: list[str] = []
        codes = [item.code for item in self.items]
        for dup in sorted({c for c in codes if codes.count(c) > 1}):
            problems.append(f"item {dup}: code used twice")
        subscale_codes = {s.code for s in self.subscales}
        for item in self.items:
            if item.subscale is not None and item.subscale not in subscale_codes:
                problems.append(f"item {item.code}: field 'subscale': unknown '{item.subscale}'")
        kinds = {item.code: item.kind for item in self.items}
        for rule in self.scores:
            for ref in rule.all_items:
                if ref not in kinds:
                    problems.append(f"score {rule.code}: unknown item '{ref}'")
                elif kinds[ref] not in NUMERIC_KINDS:
                    problems.append(
                        f"score {rule.code}: item '{ref}' is {kinds[ref]}, not a score or count"
                    )
        problems += self._code_problems()
        if not self.items and not self.codes:
            problems.append("an instrument needs items or behaviour codes")
        measure_codes = [m.code for m in self._measures_unchecked()]
        for dup in sorted({c for c in measure_codes if measure_codes.count(c) > 1}):
            problems.append(f"measure {dup}: code used twice (items, scores, subscales)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _code_problems(self) -> list[str]:
        problems = []
        codes = [c.code for c in self.codes]
        for dup in sorted({c for c in codes if codes.count(c) > 1}):
            problems.append(f"code {dup}: code used twice")
        keys = [c.key.lower() for c in self.codes]
        for dup in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(f"key {dup!r} used by more than one code")
        names = set(codes) | set(self.code_groups())
        for summary in self.summaries:
            for ref in summary.operands:
                if ref not in names:
                    problems.append(f"summary {summary.code}: unknown code or group '{ref}'")
            if summary.rule == SummaryRule.DURATION:
                points = [c for c in self.codes_of(summary.of) if not c.segment]
                if points:
                    problems.append(
                        f"summary {summary.code}: duration needs segment codes, "
                        f"{points[0].code} marks a point in time"
                    )
        return problems

    # -- behaviour codes -------------------------------------------------------------------

    def code_groups(self) -> dict[str, list[str]]:
        """Group -> its codes, in file order."""
        groups: dict[str, list[str]] = {}
        for c in self.codes:
            if c.group is not None:
                groups.setdefault(c.group, []).append(c.code)
        return groups

    def codes_of(self, names: Iterable[str]) -> list[BehaviourCode]:
        """The behaviour codes named directly or through their group (each once, file order)."""
        wanted = set(names)
        return [c for c in self.codes if c.code in wanted or c.group in wanted]

    def event_summaries(
        self, events: pd.DataFrame, ratings: pd.Index, minutes: pd.Series | None = None
    ) -> pd.DataFrame:
        """Every code-count and summary measure per rating.

        ``events`` has the columns ``rating_id``, ``code``, ``time_s`` and ``end_s`` (NaN for
        point events); ``ratings`` lists every rating to report (a rating without events has
        counts of 0); ``minutes`` is the audio length per rating (index ``ratings``) for rates.
        """
        mine = events[events["code"].isin([c.code for c in self.codes])]
        counts = (
            mine.groupby(["rating_id", "code"]).size().unstack("code", fill_value=0)
            if not mine.empty
            else pd.DataFrame(index=pd.Index([], name="rating_id"))
        )
        counts = counts.reindex(index=ratings, columns=[c.code for c in self.codes], fill_value=0)
        length = (mine["end_s"] - mine["time_s"]).where(mine["end_s"].notna(), 0.0)
        seconds = length.groupby([mine["rating_id"], mine["code"]]).sum()
        seconds = seconds.unstack("code", fill_value=0.0) if not mine.empty else counts * 0.0
        seconds = seconds.reindex(index=ratings, columns=counts.columns, fill_value=0.0)

        def total(table: pd.DataFrame, names: Iterable[str]) -> pd.Series:
            return table[[c.code for c in self.codes_of(names)]].sum(axis=1).astype("float64")

        out: dict[str, pd.Series] = {}
        for m in self.measures():
            if m.kind == MeasureKind.CODE_COUNT:
                out[m.code] = total(counts, m.items)
        for summary in self.summaries:
            out[summary.code] = _summary_value(summary, counts, seconds, total, minutes)
        return pd.DataFrame(out, index=ratings, dtype="float64")

    # -- items ------------------------------------------------------------------------------

    def item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)

    @property
    def item_codes(self) -> list[str]:
        return [item.code for item in self.items]

    @property
    def numeric_item_codes(self) -> list[str]:
        return [item.code for item in self.items if item.is_numeric]

    @property
    def required_item_codes(self) -> list[str]:
        return [item.code for item in self.items if item.required]

    def items_by_subscale(self) -> list[tuple[Subscale | None, list[Item]]]:
        """Items grouped by subscale in file order; items without a subscale come first."""
        groups: list[tuple[Subscale | None, list[Item]]] = []
        loose = [i for i in self.items if i.subscale is None]
        if loose:
            groups.append((None, loose))
        for sub in self.subscales:
            members = [i for i in self.items if i.subscale == sub.code]
            if members:
                groups.append((sub, members))
        return groups

    def subscale_items(self) -> dict[str, list[str]]:
        return {
            s.code: [i.code for i in self.items if i.subscale == s.code] for s in self.subscales
        }

    @property
    def disagreement_threshold(self) -> float:
        """Two scores this far apart (or more) are a disagreement worth discussing.

        The file's ``disagreement``, else half the instrument's range (2 points on 0-4)."""
        if self.disagreement is not None:
            return self.disagreement
        return DEFAULT_DISAGREEMENT_SHARE * self.scale.span

    def disagreement_of(self, item: Item) -> float | None:
        """The disagreement threshold of an ordinal item: the file's ``disagreement``, else half
        the item's own range; None for other kinds."""
        if item.scale is None:
            return None
        if self.disagreement is not None:
            return self.disagreement
        return DEFAULT_DISAGREEMENT_SHARE * item.scale.span

    def count_threshold(self, larger: float) -> float:
        """Two counts of an item, the larger being ``larger``, this far apart (or more) are a
        disagreement: the file's ``disagreement``, else half the range from 0 to the larger
        count (as an ordinal item takes half its range), at least 1."""
        if self.disagreement is not None:
            return self.disagreement
        return max(1.0, DEFAULT_DISAGREEMENT_SHARE * larger)

    # -- measures ---------------------------------------------------------------------------

    def measures(self) -> list[Measure]:
        """Items (not text), rates per minute of counts, scale scores, then subscales not
        already a score (same items) and made of ordinal items, in file order."""
        return self._measures_unchecked()

    def _measures_unchecked(self) -> list[Measure]:
        code, out = self.code, []
        for i in self.items:
            if i.kind == ItemKind.TEXT:
                continue
            out.append(Measure(code, i.code, MeasureKind.ITEM, i.label, (i.code,), (), i.kind))
            if i.per_minute:
                label = f"{i.label} per minute"
                out.append(
                    Measure(
                        code,
                        i.code + RATE_SUFFIX,
                        MeasureKind.RATE,
                        label,
                        (i.code,),
                        (),
                        i.kind,
                        per_minute=True,
                    )
                )
        seen: set[frozenset[str]] = set()
        kinds = {i.code: i.kind for i in self.items}
        for rule in self.scores:
            current = tuple(rule.current_items if rule.is_cross_session else rule.items)
            kind = _score_kind(kinds, rule.all_items)
            out.append(
                Measure(
                    code, rule.code, MeasureKind.SCORE, rule.label, current,
                    tuple(rule.previous_items), kind,
                )
            )  # fmt: skip
            if not rule.is_cross_session and rule.rule == ScoreRule.MEAN and not rule.max_missing:
                seen.add(frozenset(rule.items))
        for sub, members in self.subscale_items().items():
            ordinal = tuple(c for c in members if kinds[c] == ItemKind.ORDINAL)
            if ordinal and frozenset(ordinal) not in seen:
                label = next(s.label for s in self.subscales if s.code == sub)
                out.append(Measure(code, sub, MeasureKind.SUBSCALE, label, ordinal))
        count = ItemKind.COUNT
        for c in self.codes:
            label = f"Number of '{c.label}' events"
            out.append(
                Measure(
                    code,
                    f"{code}_{c.code}{COUNT_SUFFIX}",
                    MeasureKind.CODE_COUNT,
                    label,
                    (c.code,),
                    (),
                    count,
                )
            )
        for group in self.code_groups():
            label = f"Number of {group} events"
            out.append(
                Measure(
                    code,
                    f"{code}_{group}{COUNT_SUFFIX}",
                    MeasureKind.CODE_COUNT,
                    label,
                    (group,),
                    (),
                    count,
                )
            )
        for summary in self.summaries:
            kind = count if summary.rule == SummaryRule.COUNT else ItemKind.ORDINAL
            operands = tuple(summary.operands)
            rate = summary.rule == SummaryRule.RATE
            out.append(
                Measure(
                    code, summary.code, MeasureKind.SUMMARY, summary.label, operands, (), kind,
                    per_minute=rate,
                )
            )  # fmt: skip
        return out

    # -- scoring ----------------------------------------------------------------------------

    def keyed(self, values: pd.DataFrame) -> pd.DataFrame:
        """The numeric items of ``values`` as they enter computed scores.

        ``values`` has one column per item code (missing columns count as missing) and one row
        per rating (or per resolved session); a value is a number, or NaN when the item is
        missing or not applicable. Returns one float column per numeric item, in file order,
        reverse-keyed items as min + max - x.
        """
        out = {}
        for item in self.items:
            if not item.is_numeric:
                continue
            column = values.get(item.code, np.nan)
            series = pd.Series(column, index=values.index, dtype="float64")
            out[item.code] = item.keyed(series)
        return pd.DataFrame(out, index=values.index)

    def scale_scores(
        self,
        values: pd.DataFrame,
        previous: pd.DataFrame | None = None,
        minutes: pd.Series | None = None,
    ) -> pd.DataFrame:
        """Every measure computed from items, for each row of ``values`` (see :meth:`keyed`): one
        column per scoring rule, subscale and rate measure of :meth:`measures`, in that order.

        ``previous`` holds, for each row, the item values of the same patient's session t-1
        (same index; NaN where there is none — :func:`previous_session` builds it); without
        it, cross-session scores are missing. ``minutes`` is the audio length of each row's
        session in minutes (rates are missing without it).
        """
        keyed = self.keyed(values)
        before = self.keyed(previous) if previous is not None else keyed * np.nan
        rules = {rule.code: rule for rule in self.scores}
        out: dict[str, pd.Series] = {}
        for m in self.measures():
            if m.kind not in ITEM_BASED:
                continue
            if m.kind == MeasureKind.RATE:
                out[m.code] = _per_minute(keyed[m.items[0]], minutes)
            elif m.kind == MeasureKind.SUBSCALE:
                out[m.code] = _combine(keyed[list(m.items)], ScoreRule.MEAN, 0)
            else:
                rule = rules[m.code]
                if rule.is_cross_session:
                    table = pd.concat(
                        [before[rule.previous_items], keyed[rule.current_items]], axis=1
                    )
                    out[m.code] = _combine(table, ScoreRule.MEAN, rule.max_missing)
                else:
                    out[m.code] = _combine(keyed[rule.items], rule.rule, rule.max_missing)
        return pd.DataFrame(out, index=values.index, dtype="float64")

    def cross_session_parts(
        self, values: pd.DataFrame, rule: ScoringRule
    ) -> tuple[pd.DataFrame, tuple[float, float]]:
        """The two parts of a cross-session rule per row of ``values``: the mean of its
        ``previous_items`` (what the row gives to the score of the *next* session) and of its
        ``current_items`` (NaN when an item of the part is missing), and each part's weight
        (its share of the rule's items). The score of session t is ``w_prev * previous(t-1) +
        w_cur * current(t)`` when no item is missing."""
        keyed = self.keyed(values)
        parts = pd.DataFrame(
            {
                "previous": _combine(keyed[rule.previous_items], ScoreRule.MEAN, 0),
                "current": _combine(keyed[rule.current_items], ScoreRule.MEAN, 0),
            },
            index=values.index,
        )
        total = len(rule.all_items)
        return parts, (len(rule.previous_items) / total, len(rule.current_items) / total)

    def rule_of(self, code: str) -> ScoringRule:
        return next(rule for rule in self.scores if rule.code == code)

    def rule_text(self, rule: ScoringRule) -> str:
        """How a scoring rule is computed, in words (the codebook's scoring rule), from its
        definition alone (the rule's description would say the same again)."""
        keyed = "".join(
            f"; {item.code} reverse-keyed as {item.scale.min + item.scale.max} - x"
            for item in (self.item(c) for c in rule.all_items)
            if item.reverse and item.scale is not None
        )
        if rule.max_missing:
            how = "the mean of the items present"
            if rule.rule == ScoreRule.SUM:
                how = "the mean of the items present times the number of items (prorated)"
            missing = (
                f"; when up to {rule.max_missing} of them are missing or not applicable, "
                f"{how}; otherwise missing"
            )
        else:
            missing = "; missing when any is missing or not applicable"
        if not rule.is_cross_session:
            return (
                f"{rule.rule.capitalize()} of {', '.join(rule.items)} of the row{keyed}{missing}."
            )
        return (
            f"Mean of {', '.join(rule.previous_items)} of session t-1 (same patient, session "
            f"number - 1) and {', '.join(rule.current_items)} of session t{keyed}{missing}, so "
            "also when session t-1 does not exist or is excluded (never taken from an earlier "
            "session)."
        )

    def definition(self) -> dict[str, Any]:
        """The definition as stored with an instrument version (JSON-able)."""
        return self.model_dump(mode="json", exclude={"source_file", "content_hash"})


NOT_APPLICABLE_LABEL = "Not applicable"


def _na_label(value: Any, inherited: str | None) -> Any:
    """``true`` -> the inherited label (or "Not applicable"), ``false`` -> None (no N/A);
    anything else is left for validation."""
    if value is True:
        return inherited or NOT_APPLICABLE_LABEL
    if value is False:
        return None
    return value


def _score_kind(kinds: Mapping[str, ItemKind], codes: Iterable[str]) -> ItemKind:
    """A score of counts is a count measure; any ordinal item makes it ordinal."""
    found = {kinds.get(c) for c in codes}
    return ItemKind.COUNT if found == {ItemKind.COUNT} else ItemKind.ORDINAL


def _combine(table: pd.DataFrame, rule: ScoreRule | str, max_missing: int) -> pd.Series:
    """Mean or (prorated) sum per row; NaN when more than ``max_missing`` values are missing."""
    n_items = table.shape[1]
    present = table.notna().sum(axis=1)
    mean = table.mean(axis=1, skipna=True)
    value = mean * n_items if rule == ScoreRule.SUM else mean
    return value.where(present >= n_items - max_missing)


def _summary_value(
    summary: Summary,
    counts: pd.DataFrame,
    seconds: pd.DataFrame,
    total: Any,
    minutes: pd.Series | None,
) -> pd.Series:
    """One summary measure per rating (NaN where a ratio's denominator is 0)."""
    if summary.rule == SummaryRule.COUNT:
        return total(counts, summary.of)
    if summary.rule == SummaryRule.RATE:
        return _per_minute(total(counts, summary.of), minutes)
    if summary.rule == SummaryRule.DURATION:
        return total(seconds, summary.of)
    denominator = total(counts, summary.denominator)
    ratio = total(counts, summary.numerator) / denominator.where(denominator > 0)
    return ratio * 100 if summary.rule == SummaryRule.PERCENT else ratio


def _per_minute(counts: pd.Series, minutes: pd.Series | None) -> pd.Series:
    if minutes is None:
        return counts * np.nan
    minutes = pd.Series(minutes, index=counts.index, dtype="float64")
    return counts / minutes.where(minutes > 0)


def previous_session(
    values: pd.DataFrame,
    keys: pd.DataFrame,
    by: Sequence[str] = ("patient",),
    among: pd.Series | None = None,
) -> pd.DataFrame:
    """For each row, the values of the row with the same ``by`` keys and session number - 1.

    ``keys`` has the columns ``by`` and ``session_number`` with ``values``'s index; ``among``
    (a boolean Series on that index) limits the rows that may serve as session t-1. A row
    whose session t-1 is absent gets NaN (a gap is never bridged: t-2 is not used for t).
    When several rows share the keys of t-1, the first one counts (callers pass one row per
    key).
    """
    by = list(by)
    source = values if among is None else values[among]
    source_keys = keys.loc[source.index]
    lookup = source.copy()
    lookup.index = pd.MultiIndex.from_frame(
        source_keys[by].assign(session_number=source_keys["session_number"] + 1)
    )
    lookup = lookup[~lookup.index.duplicated(keep="first")]
    wanted = pd.MultiIndex.from_frame(keys[[*by, "session_number"]])
    out = lookup.reindex(wanted)
    out.index = values.index
    return out


_NOUNS = {
    "items": "item",
    "subscales": "subscale",
    "scores": "score",
    "log_items": "log item",
    "codes": "code",
    "summaries": "summary",
}


def _location(instrument: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into 'item GHES_3: field anchors'."""
    parts: list[str] = []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] in _NOUNS:
        kind, index = rest[0], rest[1]
        entries = instrument.get(kind) or []
        code = None
        if isinstance(index, int) and index < len(entries) and isinstance(entries[index], dict):
            code = entries[index].get("code")
        parts.append(f"{_NOUNS[kind]} {code if code else f'#{index + 1}'}")
        rest = rest[2:]
    if rest:
        parts.append("field " + ".".join(str(p) for p in rest))
    return ": ".join(parts) if parts else "instrument"


def parse_instrument(data: bytes, source: str) -> Instrument:
    """Validate one instrument file's bytes; raise InstrumentError naming every problem."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InstrumentError(source, [f"not UTF-8 text ({exc.reason})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise InstrumentError(source, [f"not valid TOML: {exc}"]) from None
    raw = _anchor_keys_to_int(raw)
    try:
        instrument = Instrument.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_location(raw, err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise InstrumentError(source, problems) from None
    digest = hashlib.sha256(data).hexdigest()
    return instrument.model_copy(update={"source_file": source, "content_hash": digest})


def _anchor_keys_to_int(raw: dict[str, Any]) -> dict[str, Any]:
    """TOML table keys are strings; anchors are keyed by score point."""
    items = raw.get("items")
    if not isinstance(items, list):
        return raw
    for item in items:
        anchors = item.get("anchors") if isinstance(item, dict) else None
        if isinstance(anchors, dict):
            item["anchors"] = {
                int(k) if str(k).lstrip("-").isdigit() else k: v for k, v in anchors.items()
            }
    return raw


def load_instrument(path: Path) -> Instrument:
    return parse_instrument(Path(path).read_bytes(), Path(path).name)


def load_instruments(folder: Path) -> list[Instrument]:
    """Every ``*.toml`` in the folder, sorted by code; item codes must be unique across files."""
    instruments = [load_instrument(p) for p in sorted(Path(folder).glob("*.toml"))]
    _check_unique_across(instruments)
    return sorted(instruments, key=lambda i: i.code)


def _check_unique_across(instruments: Iterable[Instrument]) -> None:
    seen_codes: dict[str, str] = {}
    seen_items: dict[str, str] = {}
    for inst in instruments:
        if inst.code in seen_codes:
            raise InstrumentError(
                inst.source_file, [f"instrument code {inst.code} also in {seen_codes[inst.code]}"]
            )
        seen_codes[inst.code] = inst.source_file
        for m in inst.measures():
            if m.code in seen_items:
                noun = "item" if m.kind == MeasureKind.ITEM else "measure"
                raise InstrumentError(
                    inst.source_file, [f"{noun} {m.code}: code also used in {seen_items[m.code]}"]
                )
            seen_items[m.code] = inst.source_file


def instrument_from_definition(definition: Mapping[str, Any]) -> Instrument:
    """Rebuild an instrument from a stored definition (a pinned version)."""
    return Instrument.model_validate(_anchor_keys_to_int(dict(definition)))
