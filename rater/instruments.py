"""Instrument files -> validated instrument objects (pure: no Flask, no database).

An instrument is a TOML file in the instruments folder. It lists its items (each with a verbal
anchor for every score point 0-4), its subscales, its scoring rules, the homework and difficulty
type lists and its homework-log items. ``load_instrument`` validates one file and names the file,
the item and the field of every problem; ``load_instruments`` reads a whole folder.

The version of an instrument is its content: ``content_hash`` is the SHA-256 of the file bytes,
so a change to the file makes a new version while existing ratings keep theirs.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SCORE_POINTS = (0, 1, 2, 3, 4)
SCORE_MIN, SCORE_MAX = 0, 4

Code = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=64)]


class InstrumentError(ValueError):
    """An instrument file is invalid; ``problems`` lists every problem found."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(_Strict):
    code: Code
    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    anchors: dict[int, str]
    subscale: str | None = None
    reverse: bool = False
    required: bool = True

    @field_validator("anchors")
    @classmethod
    def _every_score_point_anchored(cls, anchors: dict[int, str]) -> dict[int, str]:
        missing = [p for p in SCORE_POINTS if not anchors.get(p, "").strip()]
        extra = sorted(set(anchors) - set(SCORE_POINTS))
        if missing:
            raise ValueError(f"anchors missing for score points {missing}")
        if extra:
            raise ValueError(f"anchors given for score points outside 0-4: {extra}")
        return anchors


class Subscale(_Strict):
    code: Code
    label: str = Field(min_length=1)
    description: str = ""


class ScoringRule(_Strict):
    """A computed score.

    ``mean``: the mean of ``items`` within one rating (reverse-keyed items enter as 4 - x);
    missing when any of them is missing.
    ``cross_session_mean``: the mean of ``previous_items`` of session t-1 of the same patient and
    ``current_items`` of session t; missing when session t-1 is missing (never shifted).
    """

    code: Code
    label: str = Field(min_length=1)
    rule: Literal["mean", "cross_session_mean"]
    items: list[str] = Field(default_factory=list)
    previous_items: list[str] = Field(default_factory=list)
    current_items: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _items_fit_rule(self) -> ScoringRule:
        if self.rule == "mean" and not self.items:
            raise ValueError("rule 'mean' needs 'items'")
        if self.rule == "cross_session_mean" and not (self.previous_items and self.current_items):
            raise ValueError("rule 'cross_session_mean' needs 'previous_items' and 'current_items'")
        return self

    @property
    def all_items(self) -> list[str]:
        return [*self.items, *self.previous_items, *self.current_items]


class LogItem(_Strict):
    code: Code
    label: str = Field(min_length=1)
    kind: Literal["reported_completed", "assigned_next"]
    entered_by: Literal["rater", "coordinator"]
    description: str = ""


class Instrument(_Strict):
    code: Code
    name: str = Field(min_length=1)
    description: str = ""
    items: list[Item] = Field(min_length=1)
    subscales: list[Subscale] = Field(default_factory=list)
    scores: list[ScoringRule] = Field(default_factory=list)
    homework_types: list[str] = Field(default_factory=list)
    difficulty_types: list[str] = Field(default_factory=list)
    log_items: list[LogItem] = Field(default_factory=list)
    # Filled by the loader, not the file:
    source_file: str = ""
    content_hash: str = ""

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
        for rule in self.scores:
            for ref in rule.all_items:
                if ref not in codes:
                    problems.append(f"score {rule.code}: unknown item '{ref}'")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)

    @property
    def item_codes(self) -> list[str]:
        return [item.code for item in self.items]

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

    def keyed(self, code: str, score: float) -> float:
        """The score as it enters computed scores (reverse-keyed items flipped)."""
        return SCORE_MAX + SCORE_MIN - score if self.item(code).reverse else score

    def mean_score(self, rule: ScoringRule, scores: Mapping[str, float | None]) -> float:
        """A ``mean`` rule over one rating's item scores; NaN when an item is missing."""
        values = [scores.get(code) for code in rule.items]
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
            return math.nan
        return sum(self.keyed(c, float(v)) for c, v in zip(rule.items, values, strict=True)) / len(
            values
        )

    def definition(self) -> dict[str, Any]:
        """The definition as stored with an instrument version (JSON-able)."""
        return self.model_dump(mode="json", exclude={"source_file", "content_hash"})


def _location(instrument: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into 'item GHES_3: field anchors'."""
    parts: list[str] = []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] in ("items", "subscales", "scores", "log_items"):
        kind, index = rest[0], rest[1]
        entries = instrument.get(kind) or []
        code = None
        if isinstance(index, int) and index < len(entries) and isinstance(entries[index], dict):
            code = entries[index].get("code")
        noun = {
            "items": "item",
            "subscales": "subscale",
            "scores": "score",
            "log_items": "log item",
        }
        parts.append(f"{noun[kind]} {code if code else f'#{index + 1}'}")
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
        for code in inst.item_codes:
            if code in seen_items:
                raise InstrumentError(
                    inst.source_file, [f"item {code}: code also used in {seen_items[code]}"]
                )
            seen_items[code] = inst.source_file


def instrument_from_definition(definition: Mapping[str, Any]) -> Instrument:
    """Rebuild an instrument from a stored definition (a pinned version)."""
    return Instrument.model_validate(_anchor_keys_to_int(dict(definition)))
