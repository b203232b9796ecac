"""Perturbation sets as a sweep declares them: a plain name, or a typed set with parameters.

    perturbations:
      - typo                                   # a plain name: the family at its default strength
      - {name: cm_de, family: codemix, rate: 0.3, languages: [de, fr]}
      - {name: pg, family: polygloss, languages: [de, fr], budget: 3, max_queries: 64}

Families (the code is in tasks/perturb.py, tasks/codemix.py and tasks/attack.py):

    typo       rate            share of words of 4+ characters with one inner character swapped,
                               dropped or doubled (0.2)
    char       rate, ops       share of words of 3+ characters with one edit of `ops`: swap,
                               delete, insert (a neighbouring key), key (a neighbouring key
                               instead) (0.2, all four)
    swap       rate            share of adjacent word pairs swapped (0.2)
    shuffle    window, rate    words shuffled within consecutive windows of `window` words, each
                               window with probability `rate` (3, 0.5)
    dropout    rate            share of words dropped, at least one kept (0.1)
    nopunct, lower             punctuation removed; lower-cased
    codemix    languages, rate | budget
                               words replaced by a translation into one of `languages`, drawn at
                               random from the lexicon: each word with a translation with
                               probability `rate` (0.3), or exactly `budget` of them per example;
                               each word offers its `candidates` (2) best translations per
                               language
    polygloss  languages, budget, max_queries
                               the loss-guided attack (Tan & Joty 2021): greedy word substitutions
                               from the lexicon, each the one that raises the model's loss on the
                               gold label most, at most `budget` (3) and `max_queries` model
                               queries (64) per example
    bumblebee  languages, budget, max_phrase, max_queries
                               the phrase-level attack: phrases of up to `max_phrase` (3) words
                               aligned between an example and its own translations in
                               `languages` (parallel test data: XNLI, PAWS-X), swapped greedily

Every set may also give `tasks` (the target tasks it applies to; default: every target that can
keep its labels under it), `max_examples` (the first N test examples per language; attacks
default to 100) and `context` (span QA: perturb the context too, answers re-located). Code-mixing
sets read `lexicon` (`LexiconSource`). A plain name is its family's set at the default strength,
and a stage's key holds plain names as plain strings, so sweeps written before sets had
parameters keep their stage keys; a declared set is keyed by its parameters that differ from the
defaults.

`check_sets` refuses, with the key path, a set that cannot keep a target task's labels: attacks
need one label per example (classification, multiple choice); bumblebee needs parallel test
data; retrieval targets are evaluated without a head, so no set applies to them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from xscale.sweep.io import resolve_path
from xscale.sweep.phases import Strict
from xscale.sweep.spaces import FieldError
from xscale.tasks import format_info
from xscale.tasks.registry import TASKS

SET_NAME = r"^[A-Za-z][A-Za-z0-9_-]*$"  # no dots: it is one part of a metric name
# names a set may not take: split names (analysis skips them) and the set aggregates' names
RESERVED = frozenset({"dev", "train", "valid", "validation", "test", "avg", "clean"})
ATTACKS = ("polygloss", "bumblebee")
ATTACK_FORMATS = ("pair_classification", "single_classification", "multiple_choice")
# tasks whose test rows are translations of each other, row by row (Task.parallel "rows")
PARALLEL_TEST = tuple(n for n, t in TASKS.items() if t.parallel == "rows")
# tasks with sentences parallel across languages (rows or pairs): lexicons are induced from them
INDUCE_TASKS = tuple(n for n, t in TASKS.items() if t.parallel)
Rate = Annotated[float, Field(gt=0, le=1)]
CODEMIX_RATE = 0.3


class LexiconSource(Strict):
    """Where code-mixing takes translations from: MUSE files (`muse`: a path pattern with {src}
    and {tgt}, e.g. `dicts/{src}-{tgt}.txt`) or, by default, induced from the parallel rows of
    `induce_from` (XNLI / PAWS-X training rows, Tatoeba pairs) under `root` (default: the
    target task's data root), reading at most `max_rows` rows per language."""

    muse: str | None = None
    induce_from: tuple[str, ...] = Field(PARALLEL_TEST[:1], min_length=1)  # XNLI's rows
    root: str | None = None
    max_rows: int = Field(2000, ge=10, le=1_000_000)

    @field_validator("muse")
    @classmethod
    def _pattern(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and ("{src}" not in v or "{tgt}" not in v):
            raise ValueError("must hold {src} and {tgt}, e.g. dicts/{src}-{tgt}.txt")
        return resolve_path(v, info)

    @field_validator("root")
    @classmethod
    def _root(cls, v: str | None, info: ValidationInfo) -> str | None:
        return v if v in (None, "hub", "fixtures") else resolve_path(v, info)

    @field_validator("induce_from")
    @classmethod
    def _tasks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for t in v:
            if t not in INDUCE_TASKS:
                raise ValueError(f"{t!r} has no parallel rows (use {', '.join(INDUCE_TASKS)})")
        return v


class SetBase(Strict):
    name: str = Field(pattern=SET_NAME)
    family: str  # each family's model narrows it to its own name
    tasks: tuple[str, ...] | None = None  # the target tasks it applies to (default: all it can)
    max_examples: int | None = Field(None, ge=1)  # the first N test examples per language
    context: bool = False  # span QA: perturb the context too (answers re-located)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" not in data and "family" in data:
            return {**data, "name": data["family"]}
        return data

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED:
            raise ValueError(f"{v!r} is reserved (split and aggregate names)")
        return v

    @property
    def attack(self) -> bool:
        return self.family in ATTACKS


class Typo(SetBase):
    family: Literal["typo"]
    rate: Rate = 0.2


class Char(SetBase):
    family: Literal["char"]
    rate: Rate = 0.2
    ops: tuple[Literal["swap", "delete", "insert", "key"], ...] = Field(
        ("swap", "delete", "insert", "key"), min_length=1
    )


class Swap(SetBase):
    family: Literal["swap"]
    rate: Rate = 0.2


class Shuffle(SetBase):
    family: Literal["shuffle"]
    window: int = Field(3, ge=2, le=20)
    rate: Rate = 0.5


class Dropout(SetBase):
    family: Literal["dropout"]
    rate: float = Field(0.1, gt=0, lt=1)


class Nopunct(SetBase):
    family: Literal["nopunct"]


class Lower(SetBase):
    family: Literal["lower"]


class CodeMixBase(SetBase):
    languages: tuple[str, ...] = Field(min_length=1)  # embedded languages (the example's skipped)
    lexicon: LexiconSource = Field(default_factory=LexiconSource)


Candidates = Annotated[int, Field(ge=1, le=3)]  # translations considered per word and language


class Codemix(CodeMixBase):
    family: Literal["codemix"]
    candidates: Candidates = 2
    rate: Rate = CODEMIX_RATE
    budget: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="after")
    def _one_strength(self) -> Codemix:
        # (a dump of a set with a budget holds the default rate: reloading it is no conflict)
        if self.budget is not None and self.rate != CODEMIX_RATE:
            raise ValueError("give rate or budget, not both")
        return self


class Polygloss(CodeMixBase):
    family: Literal["polygloss"]
    candidates: Candidates = 2
    budget: int = Field(3, ge=1, le=50)
    max_queries: int = Field(64, ge=1, le=100_000)
    max_examples: int | None = Field(100, ge=1)


class Bumblebee(CodeMixBase):
    family: Literal["bumblebee"]
    budget: int = Field(2, ge=1, le=20)
    max_phrase: int = Field(3, ge=1, le=8)
    max_queries: int = Field(64, ge=1, le=100_000)
    max_examples: int | None = Field(100, ge=1)


FAMILIES: dict[str, type[SetBase]] = {
    "typo": Typo,
    "char": Char,
    "swap": Swap,
    "shuffle": Shuffle,
    "dropout": Dropout,
    "nopunct": Nopunct,
    "lower": Lower,
    "codemix": Codemix,
    "polygloss": Polygloss,
    "bumblebee": Bumblebee,
}
PerturbationSet = Annotated[
    Typo | Char | Swap | Shuffle | Dropout | Nopunct | Lower | Codemix | Polygloss | Bumblebee,
    Field(discriminator="family"),
]
# the plain names sweeps have always used: each family's set at its default strength
PLAIN = ("typo", "swap", "nopunct", "lower")
DEFAULTS: dict[str, SetBase] = {n: FAMILIES[n](name=n, family=n) for n in PLAIN}  # type: ignore[call-arg]
PerturbationEntry = str | PerturbationSet


def parse_set(raw: Any, path: str, base: str | None = None) -> str | SetBase:
    """One entry of `perturbations` (a plain name or a mapping), or a FieldError at `path`."""
    if isinstance(raw, str):
        if raw not in DEFAULTS:
            raise FieldError(
                path,
                f"unknown perturbation {raw!r} (known: {', '.join(PLAIN)}; or a mapping with"
                f" family: one of {', '.join(FAMILIES)})",
            )
        return raw
    if not isinstance(raw, dict):
        raise FieldError(path, "expected a set name or a mapping {name: ..., family: ...}")
    family = raw.get("family")
    if family not in FAMILIES:
        raise FieldError(
            f"{path}.family",
            f"unknown family {family!r} (known: {', '.join(FAMILIES)})"
            if family is not None
            else "required (one of " + ", ".join(FAMILIES) + ")",
        )
    try:
        return FAMILIES[family].model_validate(raw, context={"base": base} if base else None)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        msg = msg.removeprefix("Value error, ")
        raise FieldError(f"{path}.{loc}" if loc else path, msg) from None


def as_set(entry: str | SetBase) -> SetBase:
    return DEFAULTS[entry] if isinstance(entry, str) else entry


def set_name(entry: str | SetBase) -> str:
    return entry if isinstance(entry, str) else entry.name


def why_not(pset: SetBase, task_name: str) -> str | None:
    """Why `pset` cannot keep `task_name`'s labels (None: it can)."""
    task = TASKS[task_name]
    info = format_info(task)
    if not info.trains or info.pooled:
        return f"{task_name} is a retrieval task, evaluated without a task head"
    if pset.attack and task.format not in ATTACK_FORMATS:
        return (
            f"the {pset.family} attack needs one gold label per example (classification or"
            f" multiple choice); {task_name} is {task.format}"
        )
    if pset.family == "bumblebee" and task.parallel != "rows":
        return (
            f"bumblebee swaps phrases from an example's own translations, so it needs test data"
            f" parallel across languages ({', '.join(PARALLEL_TEST)}); {task_name} has none"
        )
    return None


def applies(entry: str | SetBase, task_name: str) -> bool:
    """Whether a target stage of `task_name` evaluates this entry: plain names on every target
    whose format has text (as before sets had parameters); a declared set on the targets it
    names (or all, by default) that have a task head."""
    if isinstance(entry, str):
        info = format_info(TASKS[task_name])
        return bool(info.text_fields) or info.token_level
    if entry.tasks is not None and task_name not in entry.tasks:
        return False
    info = format_info(TASKS[task_name])
    return info.trains and not info.pooled


def stage_entries(entries, task_name: str) -> tuple:
    """The entries a target stage of `task_name` carries in its spec, as JSON values: a plain
    name as itself, on every target as before sets had parameters (the stage evaluates it where
    the format has text); a declared set only on the targets it `applies` to, as the plain name
    when it equals that name's defaults (the same key), else by its name, family and the
    parameters it changes."""
    out = []
    for entry in entries:
        if isinstance(entry, str):  # on every target, as before sets had parameters
            out.append(entry)
        elif task_name in TASKS and not applies(entry, task_name):
            continue
        elif entry.name in DEFAULTS and entry == DEFAULTS[entry.name]:
            out.append(entry.name)
        else:
            out.append(entry.model_dump(mode="json", exclude_defaults=True))
    return tuple(out)


def check_sets(entries, target_tasks, path: str = "perturbations") -> None:
    """Names unique; `tasks` and `languages` known; no set on a target whose labels it cannot
    keep (FieldError with the key path). `target_tasks` None: names only."""
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        name = set_name(entry)
        if name in seen:
            raise FieldError(f"{path}.{i}", f"duplicate {name!r}")
        seen.add(name)
        if isinstance(entry, str) or target_tasks is None:
            continue
        for j, task in enumerate(entry.tasks or ()):
            if task not in target_tasks:
                raise FieldError(f"{path}.{i}.tasks.{j}", f"{task!r} is not in target_tasks")
            reason = why_not(entry, task)
            if reason:
                raise FieldError(f"{path}.{i}.tasks.{j}", f"{entry.family} cannot apply: {reason}")
        for task in entry.tasks or target_tasks:
            if task not in TASKS or not applies(entry, task):
                continue
            reason = why_not(entry, task)
            if reason:
                raise FieldError(
                    f"{path}.{i}",
                    f"{entry.family} set {name!r} cannot keep {task}'s labels: {reason}"
                    f" (restrict it with tasks: [...])",
                )
        if isinstance(entry, CodeMixBase) and entry.lexicon.muse is None:
            known = set().union(*(TASKS[t].languages for t in entry.lexicon.induce_from))
            for j, lang in enumerate(entry.languages):
                if lang not in known:
                    raise FieldError(
                        f"{path}.{i}.languages.{j}",
                        f"no parallel rows in {lang!r} to induce a lexicon from"
                        f" ({'+'.join(entry.lexicon.induce_from)} has {', '.join(sorted(known))})",
                    )
