"""The five questions xscale exists to answer, each as tables and one sentence: the answer with
its numbers and intervals, or what the sweep lacks to give one.

    Q1  in-language (or translate-train) minus zero-shot, per size, and its trend over sizes
    Q2  multilingual minus English intermediate training, clean scores (XQuAD first)
    Q3  the gain of English intermediate training, per size, and its trend (tables.benefit)
    Q4  degradation under perturbation by size, and multilingual minus English intermediate
    Q5  easy minus hard subsets of an intermediate task; difficulty/alignment vs transfer

A size is one checkpoint: trends are fitted on per-size means (`stats.size_trend`), two sizes
are a comparison of two checkpoints, never a slope.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping

from xscale.analyze.names import BASELINE, IN_LANGUAGE, ZERO_SHOT
from xscale.analyze.robustness import _value, intermediate_kind
from xscale.analyze.scores import Scored
from xscale.analyze.stats import PairedGain, Summary, Trend, paired_gain, size_trend
from xscale.analyze.tables import _size_order, group_cells, with_adjusted
from xscale.tasks.registry import TASKS
from xscale.tracking.names import OVERLAP

Q2_MEASURED_ON = "xquad"  # the target question 2 names; the others are shown after it

QUESTIONS = {
    1: "Does a larger model shrink the gap between English-only (zero-shot) and in-language"
    " training?",
    2: "Do multilingual intermediate tasks beat English-only ones (measured on XQuAD)?",
    3: "Does scale amplify or diminish the benefit of English intermediate training?",
    4: "How robust is zero-shot transfer under adversarial perturbation, by size, for English"
    " vs non-English intermediate tasks?",
    5: "How does the difficulty of the intermediate task change transfer and cross-lingual"
    " alignment?",
}


# --------------------------------------------------------------------------- tables


def in_language_trend_table(scored: Scored) -> list[dict]:
    """Q1: per intermediate x target, target-language training minus zero-shot (non-English
    mean, paired by seed) at each size, and its trend over sizes (negative: scale shrinks the
    gap between English-only and in-language training)."""
    groups = group_cells(scored)
    rows: dict[tuple, dict] = {}
    diffs: dict[tuple, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    names: dict[float, str] = {}
    for (size, inter, target, mode), seeds in groups.items():
        zero = groups.get((size, inter, target, ZERO_SHOT))
        if mode != IN_LANGUAGE or zero is None:
            continue
        g = (inter, target)
        row = rows.setdefault(
            g,
            {
                "intermediate_task": inter,
                "target_task": target,
                "training_data": training_data(target),
            },
        )
        treat, ref = _seed_values(scored, seeds, "non_en"), _seed_values(scored, zero, "non_en")
        row[f"diff@{size}"] = paired_gain(treat, ref)
        params = scored.size_params.get(size)
        if params is not None:
            names[params] = size
            diffs[g][params] += [t - ref[s] for s, t in treat.items() if _both(t, ref.get(s))]
    out = []
    for g, row in rows.items():
        row["trend"] = size_trend(diffs[g], names)
        out.append(row)
    return with_adjusted(out, "trend")


def training_data(target: str) -> str:
    """What a target's non-English training data are: `translate-train` (machine translations
    of the English set: XNLI, PAWS-X) or `in-language` (native text: PAN-X, UD-POS)."""
    task = TASKS.get(target)
    return "translate-train" if task is not None and task.translated_train else "in-language"


def _seed_values(scored: Scored, seeds: Mapping[str, tuple], q: str) -> dict[str, float | None]:
    out = {}
    for seed, key in seeds.items():
        s = scored.scores.get(key)
        out[seed] = None if s is None else getattr(s, q)
    return out


def _both(a, b) -> bool:
    return a is not None and b is not None and not math.isnan(a) and not math.isnan(b)


def kind_contrast(
    scored: Scored,
    value: Callable[[tuple], float | None],
    groups_of: Callable[[tuple], list[tuple]],
) -> list[dict]:
    """Multilingual minus English intermediate training of the same task (`base_task`), per
    group and size: at each seed the mean over the entries of each kind, paired by seed, and
    the difference's trend over sizes. `groups_of(cell key)` names the rows a cell counts in
    (each row also split by task); `value(key, group)`. A task with one kind only has no row."""
    per: dict[tuple, dict[str, dict[str, dict[str, list]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    tasks: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for key in scored.scores:
        size, inter, _, _, seed = key
        kind = intermediate_kind(scored, key)
        if kind == "none":
            continue
        for g in groups_of(key):
            v = value((key, g))
            if v is not None:
                pair = (*g, base_task(scored, key))  # English and multilingual: the same task
                per[pair][size][kind][seed].append(v)
                tasks[pair][kind].add(inter)
    order = _size_order(scored)
    rows = []
    for g in sorted(per):
        sizes = per[g]
        row: dict = {"group": g}
        by_params: dict[float, list] = defaultdict(list)
        names: dict[float, str] = {}
        for size in sorted(sizes, key=order):
            kinds = sizes[size]
            multi = {s: sum(v) / len(v) for s, v in kinds.get("multilingual", {}).items()}
            eng = {s: sum(v) / len(v) for s, v in kinds.get("english", {}).items()}
            gain = paired_gain(multi, eng) if multi and eng else None
            row[f"diff@{size}"] = gain
            params = scored.size_params.get(size)
            if gain is not None and params is not None:
                names[params] = size
                by_params[params] += [multi[s] - eng[s] for s in multi if s in eng]
        if all(row[f"diff@{size}"] is None for size in sizes):
            continue  # one kind only (an English task without a multilingual version)
        row["trend"] = size_trend(by_params, names)
        row["multilingual_tasks"] = ", ".join(sorted(tasks[g].get("multilingual", ())))
        row["english_tasks"] = ", ".join(sorted(tasks[g].get("english", ())))
        rows.append(row)
    return rows


def base_task(scored: Scored, key) -> str:
    """The task whose data a chain's intermediate stage trained on, a translation counted as
    its original (`squad` for SQuAD and its translate-train files, `panx` for PAN-X in any
    languages): English and multilingual intermediate training are compared task by task."""
    params = (scored.runs.get(key) or {}).get("params", {})
    data = str(params.get("intermediate_data") or "")
    if not data or data == "unknown":  # runs from before the param: kinds pooled, as then
        return "all"
    return "+".join(sorted({original_task(t) for t in data.split("+")}))


def multilingual_vs_english_table(scored: Scored) -> list[dict]:
    """Q2: clean non-English score after multilingual minus after English intermediate
    training, per target x mode, at each size and its trend."""

    def groups_of(key):
        return [(key[2], key[3])]

    def value(item):
        key, _ = item
        s = scored.scores.get(key)
        return None if s is None else s.non_en

    rows = kind_contrast(scored, value, groups_of)
    for r in rows:
        r["target_task"], r["train_languages"], r["task"] = r.pop("group")
    rows.sort(
        key=lambda r: (
            r["target_task"] != Q2_MEASURED_ON,
            r["target_task"],
            r["train_languages"],
            r["task"],
        )
    )
    return with_adjusted(
        [_front(r, ("target_task", "train_languages", "task")) for r in rows], "trend"
    )


def robustness_kind_table(scored: Scored) -> list[dict]:
    """Q4: the non-English drop under each set after multilingual minus after English
    intermediate training (negative: multilingual intermediate training makes transfer more
    robust), per set x target x mode, at each size and its trend (size x kind interaction)."""

    def groups_of(key):
        return [(p, key[2], key[3]) for p in scored.perturbations.get((key[2], key[3]), [])]

    def value(item):
        key, (pert, _, _) = item
        return _value(scored, key, pert, "drop_non_en")

    rows = kind_contrast(scored, value, groups_of)
    for r in rows:
        r["set"], r["target_task"], r["train_languages"], r["task"] = r.pop("group")
    return with_adjusted(
        [_front(r, ("set", "target_task", "train_languages", "task")) for r in rows], "trend"
    )


def data_flags(scored: Scored) -> list[dict]:
    """Q2/Q4's caveats, one row per intermediate x target x mode (over sizes and seeds): the
    intermediate task trained on the target's own data (XNLI translate-train before XNLI) or on
    its training data (SQuAD or its translations before XQuAD, MNLI before XNLI), and the most
    test examples (of the evaluated languages) that shared a text with its training data in any
    run (`overlap.test_examples`; blank where the runs predate the count)."""
    rows: dict[tuple, dict] = {}
    for key, run in scored.runs.items():
        _, inter, target, mode, _ = key
        if inter == BASELINE or not run:
            continue
        params, metrics = run.get("params", {}), run.get("metrics", {})
        tasks = data_of(str(params.get("intermediate_data", "unknown")).split("+"))
        trained_on = TASKS[target].trained_on if target in TASKS else None
        own = data_of([target, *([trained_on] if trained_on else [])])
        relation = ""
        if target in tasks:
            relation = "the target's own training data"
        elif tasks & own:
            relation = f"the target's training data ({', '.join(sorted(tasks & own))})"
        shared = metrics.get(OVERLAP)
        row = rows.setdefault(
            (inter, target, mode),
            {
                "intermediate_task": inter,
                "target_task": target,
                "train_languages": mode,
                "relation": relation,
                "shared_test_examples": None,
            },
        )
        if shared is not None and not math.isnan(float(shared)):
            have = row["shared_test_examples"]
            row["shared_test_examples"] = max(int(shared), have or 0)
    return [
        r for _, r in sorted(rows.items()) if r["relation"] or (r["shared_test_examples"] or 0) > 0
    ]


def original_task(task: str) -> str:
    """The task whose training set `task`'s training data are (or translate): `squad` for
    `squad_tt`, `mnli` for `xnli`; `task` itself otherwise."""
    return (TASKS[task].training_data_of or task) if task in TASKS else task


def data_of(tasks) -> set[str]:
    """`tasks` and the tasks whose training sets their training data are (or translate)."""
    return set(tasks) | {original_task(t) for t in tasks}


def flags_text(rows: list[dict]) -> str:
    """One sentence naming each flagged pair ('' when none)."""
    if not rows:
        return ""
    parts = []
    for r in rows:
        what = [r["relation"]] if r["relation"] else []
        if r["shared_test_examples"]:
            what.append(
                f"{r['shared_test_examples']} test examples share a text with its training data"
            )
        parts.append(f"{r['intermediate_task']} before {r['target_task']} ({'; '.join(what)})")
    return (
        "Flagged, not a clean contrast: " + ", ".join(parts) + " (table intermediate_data_flags)."
    )


def _front(row: dict, keys: tuple[str, ...]) -> dict:
    return {**{k: row[k] for k in keys}, **{k: v for k, v in row.items() if k not in keys}}


# --------------------------------------------------------------------------- answers


def _num(v: float | None, signed: bool = True) -> str:
    return "—" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")


def _gain_text(g: PairedGain | None) -> str:
    if g is None or g.gain.mean is None:
        return "—"
    s: Summary = g.gain
    if s.deterministic:
        return f"{s.mean:+.2f} (deterministic)"
    if s.half_width is None:
        return f"{s.mean:+.2f} (no interval)"
    return f"{s.mean:+.2f} ± {s.half_width:.2f}"


def trend_text(t: Trend, what: str) -> str:
    """One clause on a trend over sizes, as a reviewer would accept it."""
    if t.kind == "none":
        return f"{what}: not estimable ({t.note})"
    if t.kind == "deterministic":
        return f"{what}: the same at every size and seed (deterministic)"
    if t.kind == "two_models":
        small, large = t.sizes
        ci = f" [{t.ci_low:+.2f}, {t.ci_high:+.2f}]" if t.ci else ""
        return (
            f"{what}: {large} minus {small} {_num(t.estimate)}{ci}, a comparison of two"
            " checkpoints, not a trend (a trend needs at least 3 sizes)"
        )
    if not t.ci:
        return f"{what}: slope {_num(t.estimate)} per 10x parameters ({t.note})"
    direction = "rises" if t.ci_low > 0 else "falls" if t.ci_high < 0 else "shows no clear trend"
    return (
        f"{what} {direction} with size: slope {_num(t.estimate)} [{t.ci_low:+.2f},"
        f" {t.ci_high:+.2f}] per 10x parameters over {t.n_sizes} sizes (p={t.p_value:.3g})"
    )


def _per_size(row: Mapping, prefix: str) -> str:
    parts = [f"{k[len(prefix) :]} {_gain_text(v)}" for k, v in row.items() if k.startswith(prefix)]
    return ", ".join(parts)


def _p_text(row: Mapping, column: str) -> str:
    p, holm = row[column].p_value, row.get(f"{column}_p_holm")
    if p is None:
        return ""
    return f" (p={p:.3g}" + (f", Holm {holm:.3g})" if holm is not None else ")")


def reading_note(scored: Scored) -> str:
    """What the intervals of this sweep include, and what its sizes allow, before the answers."""
    sizes = sorted({k[0] for k in scored.scores}, key=lambda s: scored.size_params.get(s) or 0)
    seeds = sorted({k[4] for k in scored.scores})
    pretrained: dict[str, set] = defaultdict(set)
    for r in scored.stages:
        p = r.get("params", {})
        if r.get("kind") == "pretrain" and p.get("model_size") in sizes:
            pretrained[p["model_size"]].add(str(p.get("seed")))
    per_seed = [s for s in sizes if len(pretrained.get(s, ())) > 1]
    one = [s for s in sizes if s not in per_seed]
    parts = [f"This sweep has {len(sizes)} size(s) ({', '.join(sizes)}) and {len(seeds)} seed(s)."]
    if one:
        parts.append(
            f"{', '.join(one)}: one checkpoint per size (pretrained once, or the released"
            " weights), so the ± over seeds is fine-tuning variance only; a difference between"
            " sizes is also a difference between two checkpoints, which no interval here covers."
        )
    if per_seed:
        parts.append(
            f"{', '.join(per_seed)}: each seed pretrains its own checkpoint (pretrain.per_seed),"
            " so the ± over seeds includes the pretraining draw."
        )
    if len(sizes) < 3:
        parts.append(
            "A trend over sizes needs at least 3 sizes: with fewer, each size effect below is a"
            " comparison of two checkpoints, not a slope."
        )
    parts.append(
        "Tables of tests give their count and Holm / Benjamini-Hochberg adjusted p-values;"
        " a cell whose seeds give one value is marked deterministic, with no interval."
    )
    return " ".join(parts)


def answer(question: int, tables: Mapping[str, list[dict]], scored: Scored) -> str:
    """The section's opening sentence: the answer with numbers, or what is missing."""
    if question == 1:
        rows = tables.get("in_language_trend", [])
        if not rows:
            return (
                "Not answered: this sweep trains no model in the target languages"
                " (train_languages has no in-language mode), so there is no gap to compare."
            )
        return " ".join(
            f"{r['target_task']} after {r['intermediate_task']}: {r['training_data']} minus"
            f" zero-shot (non-English) {_per_size(r, 'diff@')}; "
            + trend_text(r["trend"], "the difference")
            + "."
            for r in rows
        )
    if question == 2:
        rows = tables.get("multilingual_vs_english", [])
        if not rows:
            return (
                "Not answered: this sweep has no multilingual intermediate task beside the"
                " English version of the same task (e.g. {task: panx, languages: [en]} and"
                " {task: panx, languages: [en, de, zh]}, or squad and squad_tt)."
            )
        lead = (
            ""
            if any(r["target_task"] == Q2_MEASURED_ON for r in rows)
            else ("Not on XQuAD (not a target of this sweep); ")
        )
        text = lead + " ".join(
            f"{r['target_task']}, {r['task']}: multilingual ({r['multilingual_tasks']}) minus"
            f" English ({r['english_tasks']}) intermediate training, non-English score,"
            f" {_per_size(r, 'diff@')}; " + trend_text(r["trend"], "the difference") + "."
            for r in rows
        )
        flags = flags_text(tables.get("intermediate_data_flags", []))
        return f"{text} {flags}" if flags else text
    if question == 3:
        rows = tables.get("benefit", [])
        if not rows:
            return (
                f"Not answered: no intermediate task beside '{BASELINE}' at the same size and"
                " target, so there is no benefit to measure."
            )
        return " ".join(
            f"{r['target_task']} after {r['intermediate_task']}: non-English gain over"
            f" '{BASELINE}' {_per_size(r, 'gain@')}; " + trend_text(r["trend"], "the gain") + "."
            for r in rows
        )
    if question == 4:
        fits = [r for r in tables.get("robustness_fits", []) if r["quantity"] == "drop_rel_non_en"]
        kinds = tables.get("robustness_kind", [])
        if not fits:
            return "Not answered: this sweep evaluates no perturbation set."
        text = " ".join(
            f"{r['set']} on {r['target_task']} after {r['intermediate_task']}: "
            + trend_text(r["trend"], "the relative non-English drop")
            + "."
            for r in fits
        )
        if not kinds:
            return text + (
                " English vs non-English intermediate tasks: not answered, no multilingual"
                " intermediate task in this sweep."
            )
        return (
            text
            + " "
            + " ".join(
                f"{r['set']} on {r['target_task']}, {r['task']}: multilingual minus English"
                f" intermediate training, non-English drop, {_per_size(r, 'diff@')}; "
                + trend_text(r["trend"], "the difference")
                + "."
                for r in kinds
            )
            + (" " + flags_text(tables.get("intermediate_data_flags", []))).rstrip()
        )
    if question == 5:
        subsets = [r for r in tables.get("subsets", []) if "easy_minus_hard_non_en" in r]
        corr = tables.get("correlations", [])
        if not subsets and not corr:
            return (
                "Not answered: this sweep declares no cartography subsets and measures no"
                " alignment (cartography and alignment in the sweep file)."
            )
        parts = [
            f"{r['task']} at {r['model_size']} ({r['fraction']:g} of its examples), then"
            f" {r['target_task']}: easy minus hard subset, non-English score,"
            f" {_gain_text(r['easy_minus_hard_non_en'])}" + _p_text(r, "easy_minus_hard_non_en")
            for r in subsets
        ]
        if corr:
            k = corr[0]["tests_in_table"]
            strong = [r for r in corr if r.get("p_holm") is not None and r["p_holm"] < 0.05]
            parts.append(
                f"of {k} correlations of difficulty or alignment with transfer (within sizes),"
                f" {len(strong)} hold after Holm's correction"
                + (
                    ": "
                    + "; ".join(
                        f"{r['predictor']} vs {r['outcome']} on {r['target_task']}"
                        f" r={r['correlation'].r:+.2f}"
                        for r in strong
                    )
                    if strong
                    else ""
                )
            )
        return "; ".join(parts) + "."
    raise ValueError(question)
