"""Records -> scores: one run per cell, the expected cells, and each cell's clean and perturbed
main-metric scores per language (None = missing)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xscale.analyze.names import (
    AXES,
    ENGLISH,
    CellKey,
    Record,
    _lang_order,
    main_metric,
    parse_metric_name,
)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def cell_key(record: Record) -> CellKey | None:
    params = record.get("params", {})
    values = [params.get(a) for a in (*AXES, "seed")]
    return None if any(v in (None, "") for v in values) else tuple(str(v) for v in values)


def select_runs(records: Iterable[Record]) -> tuple[dict[CellKey, Record], list[str]]:
    """One run per cell: prefer FINISHED runs, then runs with more metrics, then the latest."""
    by_key: dict[CellKey, list[Record]] = defaultdict(list)
    notes = []
    for r in records:
        key = cell_key(r)
        if key is None:
            notes.append(f"run {r.get('run_id')} lacks one of the params {AXES + ('seed',)}")
        else:
            by_key[key].append(r)
    chosen = {}
    for key, runs in by_key.items():
        runs.sort(
            key=lambda r: (
                r.get("status") == "FINISHED",
                len(r.get("metrics", {})),
                r.get("start_time") or 0,
            )
        )
        chosen[key] = runs[-1]
        if len(runs) > 1:
            notes.append(
                f"{'/'.join(key[:4])} seed {key[4]}: {len(runs)} runs, "
                f"used {runs[-1].get('run_id')}"
            )
    return chosen, notes


def expected_cells(keys: Iterable[CellKey]) -> list[CellKey]:
    """Product of the observed sizes x intermediates x targets x seeds, per train-languages mode."""
    by_mode: dict[str, list[set]] = defaultdict(lambda: [set(), set(), set(), set()])
    for size, inter, target, mode, seed in keys:
        for axis, value in zip(by_mode[mode], (size, inter, target, seed)):
            axis.add(value)
    out = []
    for mode, (sizes, inters, targets, seeds) in by_mode.items():
        for s, i, t, seed in itertools.product(sizes, inters, targets, seeds):
            out.append((s, i, t, mode, seed))
    return out


def task_metric_values(record: Record, task: str, metric: str) -> dict[str | None, dict]:
    """{perturbation or None: {lang: value}} for `task`'s `metric` in one record."""
    out: dict[str | None, dict] = defaultdict(dict)
    for name, value in record.get("metrics", {}).items():
        m = parse_metric_name(name)
        if m and m.task == task and m.metric == metric:
            out[m.perturbation][m.lang] = float(value)
    return out


def metric_names_of(records: Iterable[Record], task: str) -> set[str]:
    names = (parse_metric_name(n) for r in records for n in r.get("metrics", {}))
    return {m.metric for m in names if m and m.task == task and m.perturbation is None}


@dataclass
class RunScores:
    """One target run's clean scores over the expected languages (None = missing)."""

    langs: dict[str, float | None]
    perturbed: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # per set and language, the clean score of the examples the set scored (`clean_<main>`,
    # logged since sets may cap or exclude examples); the clean score where it is not logged
    perturbed_clean: dict[str, dict[str, float]] = field(default_factory=dict)
    # attacks: per set and language, the % of examples right when clean that the attack flips
    success: dict[str, dict[str, float]] = field(default_factory=dict)
    # span QA: exact match per language (XTREME's QA score is (EM + F1) / 2)
    exact_match: dict[str, float] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [lang for lang, v in self.langs.items() if v is None]

    @property
    def en(self) -> float | None:
        return self.langs.get(ENGLISH)

    @property
    def non_en(self) -> float | None:
        vals = [v for lang, v in self.langs.items() if lang != ENGLISH]
        return None if not vals or None in vals else math.fsum(vals) / len(vals)

    @property
    def avg(self) -> float | None:
        vals = list(self.langs.values())
        return None if not vals or None in vals else math.fsum(vals) / len(vals)

    @property
    def gap(self) -> float | None:
        en, non_en = self.en, self.non_en
        return None if en is None or non_en is None else en - non_en

    def clean_of(self, perturbation: str, lang: str) -> float | None:
        """The clean score a set's score in `lang` is compared with."""
        logged = self.perturbed_clean.get(perturbation, {}).get(lang)
        return self.langs.get(lang) if logged is None else logged

    def drop(self, perturbation: str) -> tuple[float | None, float | None]:
        """(clean mean, perturbed mean) over the perturbation's languages."""
        pert = self.perturbed.get(perturbation, {})
        if not pert or None in pert.values():
            return None, None
        clean = [self.clean_of(perturbation, lang) for lang in pert]
        if None in clean:
            return None, None
        return math.fsum(clean) / len(clean), math.fsum(pert.values()) / len(pert)

    def lang_drop(self, perturbation: str, lang: str, relative: bool = False) -> float | None:
        """Clean minus perturbed in `lang` (points; `relative`: % of the clean score)."""
        pert = self.perturbed.get(perturbation, {}).get(lang)
        clean = self.clean_of(perturbation, lang)
        if pert is None or clean is None:
            return None
        if relative:
            return 100.0 * (clean - pert) / clean if clean else None
        return clean - pert

    def success_rate(self, perturbation: str) -> float | None:
        """An attack's mean success rate over its languages; None for a set that is no attack
        (or a language without it)."""
        pert = self.perturbed.get(perturbation, {})
        rates = [self.success.get(perturbation, {}).get(lang) for lang in pert]
        if not rates or None in rates:
            return None
        return math.fsum(rates) / len(rates)

    def set_drop(self, perturbation: str, group: str, relative: bool = False) -> float | None:
        """The drop in English (`group` "en") or the mean drop over the set's other languages
        ("non_en"); None when a language's score is missing."""
        langs = [
            lang
            for lang in self.perturbed.get(perturbation, {})
            if (lang == ENGLISH) == (group == "en")
        ]
        values = [self.lang_drop(perturbation, lang, relative) for lang in langs]
        if not values or None in values:
            return None
        return math.fsum(values) / len(values)


@dataclass
class Scored:
    """Scores of every expected cell, plus what the report needs to say about them."""

    scores: dict[CellKey, RunScores | None]
    runs: dict[CellKey, Record]
    languages: dict[tuple[str, str], list[str]]  # (target, mode) -> languages
    perturbations: dict[tuple[str, str], list[str]]  # (target, mode) -> perturbation names
    size_params: dict[str, int | None]
    notes: list[str]
    # the sweep's other stage runs (pretrain, cartography, intermediate): difficulty, alignment
    stages: list[Record] = field(default_factory=list)


def score_records(
    records: Sequence[Record],
    expected: Iterable[Sequence[str]] | None = None,
    main_metrics: Mapping[str, str] | None = None,
) -> Scored:
    runs, notes = select_runs(records)
    if expected is None:
        cells = sorted(set(expected_cells(runs)))
    else:
        cells = sorted({tuple(map(str, c)) for c in expected})
        extra = [k for k in runs if k not in set(cells)]
        if extra:
            notes.append(f"{len(extra)} target runs outside the expected cells were ignored")
        runs = {k: r for k, r in runs.items() if k in set(cells)}
    main_metrics = dict(main_metrics or {})
    metric_of = {}
    for target in sorted({c[2] for c in cells}):
        recs = [r for k, r in runs.items() if k[2] == target]
        metric_of[target] = main_metrics.get(target) or main_metric(
            target, metric_names_of(recs, target)
        )
    values = {k: task_metric_values(r, k[2], metric_of[k[2]]) for k, r in runs.items()}
    refs = {k: task_metric_values(r, k[2], f"clean_{metric_of[k[2]]}") for k, r in runs.items()}
    rates = {k: task_metric_values(r, k[2], "success_rate") for k, r in runs.items()}
    ems = {k: task_metric_values(r, k[2], "exact_match").get(None, {}) for k, r in runs.items()}
    langs: dict[tuple[str, str], set] = defaultdict(set)
    perts: dict[tuple[str, str, str], set] = defaultdict(set)
    for k, v in values.items():
        langs[(k[2], k[3])].update(v.get(None, {}))
        for p, per_lang in v.items():
            if p is not None:
                perts[(k[2], k[3], p)].update(per_lang)
    languages = {g: _lang_order(ls) for g, ls in langs.items()}
    scores: dict[CellKey, RunScores | None] = {}
    for k in cells:
        if k not in runs:
            scores[k] = None
            continue
        clean = values[k].get(None, {})
        perturbed = {
            p: {lang: values[k].get(p, {}).get(lang) for lang in _lang_order(ls)}
            for (t, m, p), ls in perts.items()
            if (t, m) == (k[2], k[3])
        }
        group = languages.get((k[2], k[3]), [])
        ref = {p: dict(v) for p, v in refs[k].items() if p is not None}
        success = {p: dict(v) for p, v in rates[k].items() if p is not None}
        scores[k] = RunScores(
            {lang: clean.get(lang) for lang in group}, perturbed, ref, success, dict(ems[k])
        )
    size_params: dict[str, int | None] = {}
    for k, r in sorted(runs.items()):
        p = _int_or_none(r.get("params", {}).get("model_params"))
        if size_params.get(k[0]) is None:
            size_params[k[0]] = p
    for k in cells:
        size_params.setdefault(k[0], None)
    perturbations = defaultdict(list)
    for t, m, p in sorted(perts):
        perturbations[(t, m)].append(p)
    return Scored(scores, runs, languages, dict(perturbations), size_params, notes)
