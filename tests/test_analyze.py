"""xscale.analyze: every aggregate, interval and fit against numbers worked out by hand, missing
cells, and an end-to-end run against a sqlite MLflow store with a parent run and nested children."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from xscale import analyze as A
from xscale.analyze.names import XTREME_R_CATEGORIES
from xscale.errors import XScaleError

# Tabulated Student t quantiles t(0.975, df).
T975 = {1: 12.706205, 2: 4.302653, 6: 2.446912, 7: 2.364624}

SIZES = {"tiny-s": 10**6, "tiny-m": 10**7, "tiny-l": 10**8}


def rec(size, inter, target, seed, metrics, train="en", status="FINISHED", run_id=None):
    return {
        "run_id": run_id or f"{size}/{inter}/{target}/{train}/{seed}",
        "run_name": f"target-{size}-{inter}-{target}-{seed}",
        "status": status,
        "start_time": 0,
        "params": {
            "model_size": size,
            "model_params": str(SIZES[size]),
            "intermediate_task": inter,
            "target_task": target,
            "train_languages": train,
            "seed": str(seed),
        },
        "metrics": metrics,
    }


def xnli_metrics(size, inter, seed):
    """en = 70 + 2*log10(P) + 2*(seed-2); gap = 20 - 2*log10(P) for `none`.
    `mnli`: en + 1 and non-en + 2 + 0.5*(seed-2). de/fr sit at non-en +1/-1.
    Perturbation `typos`: de - 3, fr - 5 (drop 4)."""
    lg = math.log10(SIZES[size])
    en = 70 + 2 * lg + 2 * (seed - 2)
    non_en = en - (20 - 2 * lg)
    if inter != "none":
        en, non_en = en + 1, non_en + 2 + 0.5 * (seed - 2)
    return {
        "xnli.en.accuracy": en,
        "xnli.de.accuracy": non_en + 1,
        "xnli.fr.accuracy": non_en - 1,
        "xnli.de.typos.accuracy": non_en + 1 - 3,
        "xnli.fr.typos.accuracy": non_en - 1 - 5,
        "xnli.avg": 0.0,  # logged aggregates are ignored (recomputed from languages)
        "xnli.typos.avg": 0.0,
        "xnli.en.loss": 0.5,  # not the main metric
    }


def grid(drop=()):
    """3 sizes x {none, mnli} x {xnli, xquad} x seeds 1..3, English zero-shot = 36 cells."""
    out = []
    for size in SIZES:
        for inter in ("none", "mnli"):
            for seed in (1, 2, 3):
                out.append(rec(size, inter, "xnli", seed, xnli_metrics(size, inter, seed)))
                quad = {"xquad.en.f1": 60.0, "xquad.es.f1": 50.0, "xquad.en.exact_match": 1.0}
                out.append(rec(size, inter, "xquad", seed, quad))
    return [r for r in out if r["run_id"] not in drop]


def row(rows, **match):
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


# ---------------------------------------------------------------- names


def test_main_metric_and_categories():
    assert A.main_metric("xnli") == "accuracy"
    assert A.main_metric("tatoeba") == "accuracy"
    assert A.main_metric("xquad") == "f1"
    assert A.main_metric("panx") == "f1"
    assert A.main_metric("bucc") == "f1"
    assert A.main_metric("tiny-nli", ["loss", "accuracy"]) == "accuracy"
    assert A.main_metric("tiny-x", ["bleu"]) == "bleu"
    with pytest.raises(XScaleError, match="tiny-x"):
        A.main_metric("tiny-x", ["bleu", "chrf"])
    # XTREME's nine tasks (XCOPA is XTREME-R's: it was filed in XTREME's classification)
    assert A.CATEGORIES["classification"] == ("xnli", "pawsx")
    assert sum(len(t) for t in A.CATEGORIES.values()) == 9
    assert sum(len(t) for t in XTREME_R_CATEGORIES.values()) == 10
    assert XTREME_R_CATEGORIES["classification"] == ("xnli", "xcopa")
    assert A.CATEGORIES["structured_prediction"] == ("udpos", "panx")
    assert A.CATEGORIES["question_answering"] == ("xquad", "mlqa", "tydiqa")
    assert A.CATEGORIES["retrieval"] == ("bucc", "tatoeba")


def test_parse_metric_name():
    assert A.parse_metric_name("xnli.de.accuracy") == A.MetricName("xnli", "de", None, "accuracy")
    assert A.parse_metric_name("xquad.es.typos.f1") == A.MetricName("xquad", "es", "typos", "f1")
    for aggregate in ("xnli.avg", "xnli.avg_non_en", "xnli.gap_en", "xnli.typos.avg"):
        assert A.parse_metric_name(aggregate) is None
    assert A.parse_metric_name("xnli.en.dev.accuracy") is None  # a split, not a perturbation
    assert A.parse_metric_name("loss") is None


# ---------------------------------------------------------------- statistics


def test_summarize_three_seeds():
    s = A.summarize([70, 72, 74])
    assert s.n == 3 and s.n_missing == 0
    assert s.mean == pytest.approx(72)
    # sd = 2, half width = t(0.975, 2) * 2 / sqrt(3) = 4.302653 * 1.154701 = 4.968275
    assert s.half_width == pytest.approx(T975[2] * 2 / math.sqrt(3), abs=1e-5)
    assert s.half_width == pytest.approx(4.968275, abs=1e-5)
    assert s.ci == pytest.approx((72 - 4.968275, 72 + 4.968275), abs=1e-5)


def test_summarize_single_seed_and_missing():
    one = A.summarize([71.5])
    assert (one.n, one.mean, one.half_width, one.ci) == (1, 71.5, None, None)
    assert A.fmt(one) == "71.50 (n=1, CI undefined)"
    gap = A.summarize([70, None, 74, float("nan")])
    assert (gap.n, gap.n_missing, gap.mean) == (2, 2, 72)
    # sd = 2*sqrt(2); half width = t(0.975, 1) * 2*sqrt(2) / sqrt(2) = 2 * 12.706205
    assert gap.half_width == pytest.approx(2 * T975[1], abs=1e-5)
    assert A.fmt(gap) == "72.00 ± 25.41 [n=2, 2 missing]"
    empty = A.summarize([None, None])
    assert (empty.n, empty.mean, empty.n_missing) == (0, None, 2)
    assert A.fmt(empty) == A.MISSING == "—"


def test_paired_gain_t_test():
    g = A.paired_gain({"1": 71, "2": 74, "3": 76}, {"1": 70, "2": 72, "3": 73})
    # differences 1, 2, 3: mean 2, sd 1, half width = 4.302653 / sqrt(3) = 2.484138
    assert g.gain.mean == pytest.approx(2)
    assert g.gain.half_width == pytest.approx(T975[2] / math.sqrt(3), abs=1e-5)
    # t = 2 / (1/sqrt(3)) = 3.464102; for df=2 the two-sided p is 1 - t/sqrt(t^2 + 2)
    t = 2 * math.sqrt(3)
    assert g.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2), abs=1e-9)
    assert g.p_value == pytest.approx(0.074180, abs=1e-6)


def test_paired_gain_not_computable():
    one = A.paired_gain({"1": 71, "2": None}, {"1": 70, "2": 72})
    assert (one.gain.n, one.gain.n_missing, one.gain.mean, one.p_value) == (1, 1, 1, None)
    assert "n=1" in one.note and "not computable" in A.fmt(one)
    flat = A.paired_gain({"1": 72, "2": 74}, {"1": 70, "2": 72})
    assert flat.gain.mean == pytest.approx(2) and flat.p_value is None
    assert "deterministic" in flat.note  # every pair differs by the same 2: no interval
    unpaired = A.paired_gain({"1": 71, "3": 75}, {"1": 70, "2": 72})
    assert (unpaired.gain.n, unpaired.gain.n_missing) == (1, 2)


def test_fit_exact_line():
    # gap = 10 - 2*log10(params), exactly
    pts = [(p, 10 - 2 * math.log10(p)) for p in (1e6, 1e7, 1e8, 1e9)]
    f = A.fit_log_params(pts)
    assert f.slope == pytest.approx(-2) and f.intercept == pytest.approx(10)
    assert f.r2 == pytest.approx(1) and f.n == 4 and f.n_sizes == 4
    assert f.slope_ci == pytest.approx((-2, -2), abs=1e-9)


def test_fit_with_residuals():
    # x = log10(P) = 0, 1, 2; y = 0, 1, 3: slope = Sxy/Sxx = 3/2, intercept = 4/3 - 3/2 = -1/6,
    # SSE = 1/36 + 1/9 + 1/36 = 1/6, se(slope) = sqrt(SSE/(n-2)/Sxx) = sqrt(1/12),
    # SST = 42/9, r^2 = 1 - (1/6)/(42/9) = 27/28.
    f = A.fit_log_params([(1, 0), (10, 1), (100, 3), (1000, None), (None, 5)])
    assert f.n == 3
    assert f.slope == pytest.approx(1.5)
    assert f.intercept == pytest.approx(-1 / 6)
    assert f.r2 == pytest.approx(27 / 28)
    assert f.slope_half_width == pytest.approx(T975[1] * math.sqrt(1 / 12), abs=1e-5)


def test_fit_degenerate():
    two = A.fit_log_params([(1e6, 5), (1e7, 3)])
    assert two.slope == pytest.approx(-2) and two.slope_ci is None and "n<3" in two.note
    one_size = A.fit_log_params([(1e6, 5), (1e6, 3), (1e6, None)])
    assert one_size.slope is None and "fewer than 2 sizes" in one_size.note
    assert A.fmt(one_size).startswith(A.MISSING)


# ---------------------------------------------------------------- tables on a full grid


def test_cell_scores():
    a = A.build_analysis(grid())
    assert len(a.scored.scores) == 36 and a.missing == []
    c = row(a.cells, model_size="tiny-s", intermediate_task="none", target_task="xnli")
    # en over seeds = 80, 82, 84; non-en = en - 8; gap = 8 exactly; avg = en - 2*8/3
    assert c["seeds"] == 3 and c["model_params"] == 10**6
    assert c["en"].mean == pytest.approx(82)
    assert c["en"].half_width == pytest.approx(4.968275, abs=1e-5)
    assert c["non_en"].mean == pytest.approx(74)
    # the gap is 8 for every seed: deterministic, no interval (never "± 0.00")
    assert c["gap"].mean == pytest.approx(8) and c["gap"].half_width is None
    assert c["gap"].deterministic
    assert c["avg"].mean == pytest.approx(82 - 16 / 3)
    big = row(a.cells, model_size="tiny-l", intermediate_task="none", target_task="xnli")
    assert big["gap"].mean == pytest.approx(4)
    q = row(a.cells, model_size="tiny-m", intermediate_task="mnli", target_task="xquad")
    assert (q["en"].mean, q["non_en"].mean, q["gap"].mean) == (60, 50, 10)
    lang = row(a.languages, model_size="tiny-s", intermediate_task="none", language="de")
    assert lang["score"].mean == pytest.approx(75)


def test_gains_over_baseline():
    a = A.build_analysis(grid())
    g = row(a.gains, model_size="tiny-s", intermediate_task="mnli", target_task="xnli")
    # non-en gains per seed 1.5, 2, 2.5: mean 2, sd 0.5, hw = 4.302653*0.5/sqrt(3) = 1.242070,
    # t = 2/(0.5/sqrt(3)) = 6.928203, p (df=2) = 1 - t/sqrt(t^2+2) = 0.020204
    nen = g["gain_non_en"]
    assert nen.gain.mean == pytest.approx(2)
    assert nen.gain.half_width == pytest.approx(1.242070, abs=1e-5)
    assert nen.p_value == pytest.approx(0.020204, abs=1e-6)
    # English gain is 1 for every seed: zero variance, p not computable (said so)
    assert g["gain_en"].gain.mean == pytest.approx(1) and g["gain_en"].p_value is None
    assert "deterministic" in g["gain_en"].note
    assert all(r["intermediate_task"] != "none" for r in a.gains)
    b = row(a.benefit, intermediate_task="mnli", target_task="xnli")
    # per size the paired non-en gain (2 at every size, as above), and its trend over sizes:
    # the per-size gains are 2, 2, 2, so the interaction is an exact zero slope
    assert b["gain@tiny-s"].gain.mean == pytest.approx(2)
    assert b["trend"].kind == "fit" and b["trend"].estimate == pytest.approx(0, abs=1e-9)
    assert not [r for r in a.benefit if r["target_task"] == "(all)"]  # never pooled


def test_xtreme_aggregates_need_every_language():
    """The grid scores XNLI in en/de/fr and XQuAD in en/es: XTREME's evaluate.py averages
    over its 15 and 11 languages, so neither task, category nor overall is given here."""
    a = A.build_analysis(grid())
    x = row(a.xtreme, model_size="tiny-s", intermediate_task="none")
    assert isinstance(x["xnli"], A.Partial) and (x["xnli"].have, x["xnli"].total) == (3, 15)
    assert (x["xquad"].have, x["xquad"].total) == (2, 11)
    assert isinstance(x["cat:classification"], A.Partial)
    assert (x["overall"].have, x["overall"].total, x["overall"].what) == (0, 9, "tasks")
    assert "partial, 0 of 9 tasks" in A.fmt(x["overall"])
    r = row(a.xtreme_r, model_size="tiny-s", intermediate_task="none")
    assert "pawsx" not in r and "bucc" not in r and "mewslix" in r  # XTREME-R's ten
    assert (r["xquad"].have, r["xquad"].total) == (2, 12)  # XTREME-R scores XQuAD in ro too


def _benchmark_records(values: dict[str, float], benchmark: str, drop=()) -> list[dict]:
    """One size x `none` x one seed, every task of `benchmark` scored in every language it
    averages over: accuracy/F1/mAP `values[task]`, QA with EM = F1 - 10."""
    from xscale.analyze.names import benchmark_categories
    from xscale.tasks.registry import TASKS

    out = []
    for names in benchmark_categories(benchmark).values():
        for t in names:
            if t in drop:
                continue
            task = TASKS[t]
            m = {}
            for lang in task.scored_languages(benchmark):
                m[f"{t}.{lang}.{task.metric}"] = values[t]
                if task.benchmarks[benchmark] == "question_answering":
                    m[f"{t}.{lang}.exact_match"] = values[t] - 10
            r = rec("tiny-s", "none", t, 1, m)
            out.append(r)
    return out


def test_benchmark_aggregates_by_hand():
    """XTREME: per task the mean over its languages (all equal here), QA (EM + F1) / 2 =
    F1 - 5; categories and overall are means over tasks, overall over all nine."""
    v = {"xnli": 80, "pawsx": 90, "udpos": 70, "panx": 60, "xquad": 75, "mlqa": 65,
         "tydiqa": 55, "bucc": 40, "tatoeba": 50}  # fmt: skip
    a = A.build_analysis(_benchmark_records(v, "xtreme"), main_metrics=MAIN)
    x = row(a.xtreme, model_size="tiny-s", intermediate_task="none")
    assert x["xquad"].mean == pytest.approx(70)  # (75 + 65) / 2
    assert x["cat:classification"].mean == pytest.approx(85)
    assert x["cat:structured_prediction"].mean == pytest.approx(65)
    assert x["cat:question_answering"].mean == pytest.approx((70 + 60 + 50) / 3)
    assert x["cat:retrieval"].mean == pytest.approx(45)
    qa = [70, 60, 50]
    assert x["overall"].mean == pytest.approx((80 + 90 + 70 + 60 + sum(qa) + 40 + 50) / 9)
    # a sweep without TyDiQA: its category and the overall score are not given, the rest are
    b = A.build_analysis(_benchmark_records(v, "xtreme", drop={"tydiqa"}), main_metrics=MAIN)
    y = row(b.xtreme, model_size="tiny-s", intermediate_task="none")
    assert y["cat:classification"].mean == pytest.approx(85)
    assert y["cat:question_answering"].missing == ("tydiqa",)
    assert (y["overall"].have, y["overall"].total) == (8, 9)


MAIN = {
    "xnli": "accuracy", "pawsx": "accuracy", "udpos": "f1", "panx": "f1", "xquad": "f1",
    "mlqa": "f1", "tydiqa": "f1", "bucc": "f1", "tatoeba": "accuracy", "xcopa": "accuracy",
    "mewslix": "map_at_20", "lareqa": "map_at_20",
}  # fmt: skip


def test_xtreme_r_follows_its_paper_for_lareqa():
    v = {"xnli": 80, "xcopa": 60, "udpos": 70, "panx": 60, "xquad": 75, "mlqa": 65,
         "tydiqa": 55, "mewslix": 30, "lareqa": 35, "tatoeba": 50}  # fmt: skip
    a = A.build_analysis(_benchmark_records(v, "xtreme_r"), main_metrics=MAIN)
    r = row(a.xtreme_r, model_size="tiny-s", intermediate_task="none")
    assert r["cat:retrieval"].mean == pytest.approx((30 + 35 + 50) / 3)  # LAReQA included
    assert r["cat:classification"].mean == pytest.approx(70)  # XNLI and XCOPA
    assert r["overall"].mean == pytest.approx(
        (80 + 60 + 70 + 60 + 70 + 60 + 50 + 30 + 35 + 50) / 10
    )


def test_gap_fits():
    """Fits on per-size means (each size is one checkpoint): the seeds' noise averages out
    within a size and is not counted as evidence of a size effect."""
    a = A.build_analysis(grid())
    f = row(a.fits, intermediate_task="none", target_task="xnli", quantity="gap")["trend"]
    # gap = 20 - 2*log10(P) exactly for `none`: an exact line through 3 sizes, no interval
    assert f.kind == "fit" and f.estimate == pytest.approx(-2) and f.n_sizes == 3 and f.n == 9
    assert f.ci is None and "exact fit" in f.note
    m = row(a.fits, intermediate_task="mnli", target_task="xnli", quantity="gap")["trend"]
    # mnli gap = 19 - 2*log10(P) - 0.5*(seed-2): the per-size means lie on the line
    assert m.estimate == pytest.approx(-2) and m.ci is None
    assert not [r for r in a.fits if r["target_task"] == "(all)"]  # metrics are never pooled
    score = row(a.fits, intermediate_task="none", target_task="xnli", quantity="non_en")["trend"]
    assert score.estimate == pytest.approx(4)  # non-en = 50 + 4*log10(P) + 2*(seed-2)
    assert all(r["tests_in_table"] == 0 for r in a.fits)  # exact lines: no test to count


def test_robustness_drop():
    a = A.build_analysis(grid())
    r = row(a.robustness, model_size="tiny-m", intermediate_task="none", target_task="xnli")
    assert r["perturbation"] == "typos"
    assert r["drop"].mean == pytest.approx(4) and r["drop"].n == 3
    assert r["clean"].mean - r["perturbed"].mean == pytest.approx(4)
    assert not [x for x in a.robustness if x["target_task"] == "xquad"]


def test_in_language_minus_zero_shot():
    records = grid()
    for size in SIZES:
        for seed in (1, 2, 3):
            m = xnli_metrics(size, "none", seed)
            m["xnli.de.accuracy"] += 5
            m["xnli.fr.accuracy"] += 5 + (seed - 2)
            records.append(rec(size, "none", "xnli", seed, m, train="in-language"))
    a = A.build_analysis(records)
    r = row(a.in_language, model_size="tiny-s", intermediate_task="none", target_task="xnli")
    # non-en diff per seed = 5 + (seed-2)/2 = 4.5, 5, 5.5
    assert r["diff_non_en"].gain.mean == pytest.approx(5)
    assert r["diff_non_en"].gain.half_width == pytest.approx(T975[2] * 0.5 / math.sqrt(3), 1e-5)
    assert len(a.in_language) == 3  # in-language only for none/xnli; no phantom cells
    assert not [m for m in a.missing if m["train_languages"] == "in-language"]


# ---------------------------------------------------------------- missing cells


def test_missing_cells_are_counted_never_zero():
    records = grid(drop={"tiny-m/mnli/xnli/en/3"})
    partial = xnli_metrics("tiny-l", "mnli", 1)
    del partial["xnli.fr.accuracy"]
    records = [
        r
        if r["run_id"] != "tiny-l/mnli/xnli/en/1"
        else rec("tiny-l", "mnli", "xnli", 1, partial, status="RUNNING")
        for r in records
    ]
    records = [
        r
        if r["run_id"] != "tiny-s/none/xquad/en/2"
        else rec("tiny-s", "none", "xquad", 2, {}, status="FAILED")
        for r in records
    ]
    a = A.build_analysis(records)
    assert len(a.missing) == 3 and len(a.scored.scores) == 36
    assert A.missing_summary(a).startswith("3 of 36 cells missing")
    reasons = {(m["model_size"], m["target_task"], m["seed"]): m["reason"] for m in a.missing}
    assert reasons[("tiny-m", "xnli", "3")] == "no run"
    assert reasons[("tiny-l", "xnli", "1")] == "RUNNING, missing 1 of 3 languages (fr)"
    assert reasons[("tiny-s", "xquad", "2")] == "FAILED, no scores"

    c = row(a.cells, model_size="tiny-m", intermediate_task="mnli", target_task="xnli")
    # seeds 1, 2 only: en = 84 - 2 + 1, 84 + 1 -> mean 84; the missing seed is counted
    assert (c["en"].n, c["en"].n_missing, c["en"].mean) == (2, 1, pytest.approx(84))
    assert "[n=2, 1 missing]" in A.fmt(c["en"])
    p = row(a.cells, model_size="tiny-l", intermediate_task="mnli", target_task="xnli")
    assert p["en"].n == 3  # English is there for the partial run
    assert (p["non_en"].n, p["non_en"].n_missing) == (2, 1)  # non-en mean needs every language
    g = row(a.gains, model_size="tiny-s", intermediate_task="mnli", target_task="xquad")
    assert (g["gain_non_en"].gain.n, g["gain_non_en"].gain.n_missing) == (2, 1)
    lang = row(a.languages, model_size="tiny-l", intermediate_task="mnli", language="fr")
    assert (lang["score"].n, lang["score"].n_missing) == (2, 1)


def test_missing_baseline_and_expected_cells():
    records = [
        r
        for r in grid()
        if not (
            r["params"]["model_size"] == "tiny-l" and r["params"]["intermediate_task"] == "none"
        )
    ]
    expected = [
        (size, inter, target, "en", str(seed))
        for size in SIZES
        for inter in ("none", "mnli")
        for target in ("xnli", "xquad")
        for seed in (1, 2, 3)
    ]
    a = A.build_analysis(records, expected=expected)
    assert len(a.missing) == 6 and {m["reason"] for m in a.missing} == {"no run"}
    g = row(a.gains, model_size="tiny-l", intermediate_task="mnli", target_task="xnli")
    assert g["gain_non_en"].gain.mean is None and g["gain_non_en"].gain.n_missing == 3
    assert A.fmt(g["gain_non_en"]).startswith(A.MISSING)
    x = row(a.xtreme, model_size="tiny-l", intermediate_task="none")
    assert isinstance(x["xnli"], A.Partial) and isinstance(x["overall"], A.Partial)
    b = row(a.benefit, intermediate_task="mnli", target_task="xnli")
    assert b["gain@tiny-l"].gain.mean is None  # no baseline at tiny-l
    assert b["trend"].n_sizes == 2  # the gain is known at two sizes
    # without `expected`, the grid is the product of what was seen: tiny-l/none is still missing
    assert len(A.build_analysis(records).missing) == 6


def test_duplicate_runs_prefer_finished():
    records = grid()
    newer = rec("tiny-s", "none", "xnli", 1, {}, status="FAILED", run_id="retry")
    newer["start_time"] = 10
    a = A.build_analysis([*records, newer])
    assert a.missing == []
    assert any("2 runs" in n for n in a.scored.notes)


def test_report_files_show_missing(tmp_path):
    a = A.build_analysis(grid(drop={"tiny-m/mnli/xnli/en/3", "tiny-m/none/xnli/en/3"}))
    out = A.write_report(a, tmp_path / "rep", header=["test"])
    md = (out / "report.md").read_text()
    assert "2 of 36 cells missing" in md and "seed 3: no run" in md
    assert "[n=2, 1 missing]" in md
    with (out / "cells.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    r = row(rows, model_size="tiny-m", intermediate_task="none", target_task="xnli")
    assert (r["en_n"], r["en_n_missing"], float(r["en_mean"])) == ("2", "1", 83.0)
    with (out / "missing.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list(out.glob("plot_*.png"))) > 0


# ---------------------------------------------------------------- MLflow end to end


def _make_store(tmp_path: Path, name="sweep-test"):
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment(name, artifact_location=(tmp_path / "mlartifacts").as_uri())
    parent = client.create_run(exp, tags={"xscale.run_kind": "sweep"}, run_name="sweep")
    pid = parent.info.run_id
    stage_tags = {"mlflow.parentRunId": pid, "xscale.run_kind": "stage"}
    inter = client.create_run(
        exp,
        run_name="intermediate-mnli",
        tags={**stage_tags, "xscale.stage_kind": "intermediate", "xscale.stage_key": "k0"},
    )
    client.set_terminated(inter.info.run_id)
    records = grid(drop={"tiny-m/mnli/xnli/en/3"})
    for i, r in enumerate(records):
        tags = {**stage_tags, "xscale.stage_kind": "target", "xscale.stage_key": f"k{i + 1}"}
        run = client.create_run(exp, run_name=r["run_name"], tags=tags)
        params = {**r["params"], "learning_rate": "2e-5", "batch_size": "8", "epochs": "1"}
        metrics = r["metrics"] if i != 5 else {}
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id, "FINISHED" if i != 5 else "FAILED")
    client.set_terminated(pid)
    return client, exp, pid


def test_analyze_end_to_end(tmp_path):
    from matplotlib import image

    client, exp, pid = _make_store(tmp_path)
    folder = A.analyze(sweep_dir=tmp_path)
    assert folder == tmp_path / "analysis"
    files = {p.name for p in folder.iterdir()}
    assert set(A.REPORT_FILES) <= files
    pngs = sorted(folder.glob("plot_*.png"))
    assert {p.name.split("_")[1] for p in pngs} == {"scaling", "gain", "languages", "robustness"}
    for p in folder.iterdir():
        assert p.stat().st_size > 0, p
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = image.imread(p)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    md = (folder / "report.md").read_text()
    assert "2 of 36 cells missing" in md
    assert "FAILED, no scores" in md and "no run" in md
    assert f"sweep run: {pid}" in md
    logged = {a.path for a in client.list_artifacts(pid, "analysis")}
    assert {f"analysis/{f}" for f in files} <= logged
    child = client.search_runs([exp], "tags.`xscale.stage_kind` = 'target'", max_results=1)[0]
    assert client.list_artifacts(child.info.run_id) == []  # only the sweep run gets the report

    # the same store by tracking URI + experiment name, explicit out dir, no plots
    out = A.analyze(
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "sweep-test",
        tmp_path / "other",
        plots=False,
        log_artifacts=False,
    )
    assert (out / "report.html").stat().st_size > 0 and not list(out.glob("*.png"))


def test_analyze_errors(tmp_path):
    with pytest.raises(XScaleError, match="no MLflow store"):
        A.analyze(sweep_dir=tmp_path / "nowhere")
    with pytest.raises(XScaleError, match="no MLflow sqlite store"):
        A.analyze("sqlite:///" + str(tmp_path / "absent.db"), "x")
    assert not (tmp_path / "absent.db").exists()
    client, exp, pid = _make_store(tmp_path)
    with pytest.raises(XScaleError, match="no MLflow experiment 'nope'") as e:
        A.analyze(sweep_dir=tmp_path, experiment="nope")
    assert "\n" not in str(e.value) and "sweep-test" in str(e.value)
    client.create_experiment("empty", artifact_location=(tmp_path / "a2").as_uri())
    with pytest.raises(XScaleError, match="has no target runs"):
        A.analyze(sweep_dir=tmp_path, experiment="empty")
    with pytest.raises(XScaleError, match="holds 2 experiments"):
        A.analyze(sweep_dir=tmp_path)


# ---------------------------------------------------------------- robustness by scale


def robust_records():
    """xnli, set `pg` on 3 sizes x {none, mnli, xnli@de+en, xml} x seeds 1..3. The drops
    (clean_accuracy of the set's examples minus its accuracy) are en 60 - 5*lg + (seed-2),
    de 40 - 4*lg, fr 42 - 4*lg + (seed-2), lg = log10(params); the multilingual intermediate
    tasks (xnli@de+en by its name, xml by its intermediate_languages param) drop 3 less in de
    and fr. The set's clean_accuracy (78, 68, 62) differs from the full clean scores."""
    out = []
    for size in SIZES:
        lg = math.log10(SIZES[size])
        for inter in ("none", "mnli", "xnli@de+en", "xml"):
            for seed in (1, 2, 3):
                multi = 3.0 if inter in ("xnli@de+en", "xml") else 0.0
                drop = {
                    "en": 60 - 5 * lg + (seed - 2),
                    "de": 40 - 4 * lg - multi,
                    "fr": 42 - 4 * lg + (seed - 2) - multi,
                }
                ref = {"en": 78.0, "de": 68.0, "fr": 62.0}
                m = {"xnli.en.accuracy": 80.0, "xnli.de.accuracy": 70.0, "xnli.fr.accuracy": 60.0}
                for lang in ref:
                    m[f"xnli.{lang}.pg.accuracy"] = ref[lang] - drop[lang]
                    m[f"xnli.{lang}.pg.clean_accuracy"] = ref[lang]
                    m[f"xnli.{lang}.pg.success_rate"] = 50.0  # read by nothing here
                m["xnli.pg.drop_en"] = 0.0  # logged aggregates are recomputed, not read
                r = rec(size, inter, "xnli", seed, m)
                langs = {"none": "none", "mnli": "en", "xml": "de+en+fr"}.get(inter)
                if langs:
                    r["params"]["intermediate_languages"] = langs
                out.append(r)
    return out


def test_set_aggregates_are_not_read_as_languages():
    assert A.parse_metric_name("xnli.pg.drop_non_en") is None
    assert A.parse_metric_name("xnli.pg.time_share") is None
    m = A.parse_metric_name("xnli.de.pg.success_rate")
    assert (m.lang, m.perturbation, m.metric) == ("de", "pg", "success_rate")


def test_robustness_by_size_uses_the_sets_own_clean_scores():
    a = A.build_analysis(robust_records())
    r = row(a.robustness_size, model_size="tiny-m", intermediate_task="none", set="pg")
    assert r["drop_en"].mean == pytest.approx(25.0) and r["drop_en"].n == 3  # 60 - 35
    assert r["drop_en"].half_width == pytest.approx(T975[2] * 1.0 / math.sqrt(3), 1e-5)
    # non-en: (40 - 28 + 42 - 28 + (seed-2)) / 2 = 13 + (seed-2)/2
    assert r["drop_non_en"].mean == pytest.approx(13.0)
    assert r["drop_rel_en"].mean == pytest.approx(100 * 25.0 / 78.0)
    assert r["drop_rel_non_en"].mean == pytest.approx((100 * 12 / 68 + 100 * 14 / 62) / 2)
    # the older table agrees: clean of the set's examples minus perturbed, over de, en, fr
    old = row(a.robustness, model_size="tiny-m", intermediate_task="none", perturbation="pg")
    assert old["drop"].mean == pytest.approx((25 + 12 + 14) / 3)


def test_robustness_fits_on_log_params():
    a = A.build_analysis(robust_records())
    en = row(a.robustness_fits, intermediate_task="mnli", set="pg", quantity="drop_en")["trend"]
    assert en.estimate == pytest.approx(-5.0) and en.n == 9 and en.n_sizes == 3
    non = row(a.robustness_fits, intermediate_task="xml", set="pg", quantity="drop_non_en")
    assert non["trend"].estimate == pytest.approx(-4.0)
    rate = row(a.robustness_fits, intermediate_task="xml", set="pg", quantity="success_rate")
    assert rate["trend"].kind == "deterministic"  # 50% at every size and seed


def test_robustness_by_intermediate_kind_side_by_side():
    a = A.build_analysis(robust_records())
    assert (
        A.intermediate_kind(a.scored, ("tiny-s", "xnli@de+en", "xnli", "en", "1")) == "multilingual"
    )
    r = row(a.robustness_inter, model_size="tiny-l", set="pg")
    # lg = 8: non-en drop 41 - 32 = 9 (+ (seed-2)/2), multilingual 3 less
    assert r["drop_non_en[none]"].mean == pytest.approx(9.0) and r["drop_non_en[none]"].n == 3
    assert r["drop_non_en[english]"].mean == pytest.approx(9.0)
    assert r["drop_non_en[multilingual]"].mean == pytest.approx(6.0)
    assert r["drop_non_en[multilingual]"].n == 6  # xnli@de+en and xml, 3 seeds each
    assert r["drop_en[english]"].mean == pytest.approx(20.0)
    assert r["english_tasks"] == "mnli" and r["multilingual_tasks"] == "xml, xnli@de+en"


def test_robustness_report_and_plot(tmp_path):
    a = A.build_analysis(robust_records())
    A.write_report(a, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Robustness by size" in text and "## Robustness by intermediate task" in text
    assert (tmp_path / "plot_robustness_xnli_en_pg.png").stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "robustness_fits.csv").open()))
    assert {r["quantity"] for r in rows} == {
        "drop_en",
        "drop_non_en",
        "drop_rel_en",
        "drop_rel_non_en",
        "success_rate",
    }


def test_the_report_answers_each_question_by_name(tmp_path):
    """Five sections named by the five questions, each opening with its answer or with what
    the sweep lacks to give one."""
    from xscale.analyze.questions import QUESTIONS

    a = A.build_analysis(robust_records())
    A.write_report(a, tmp_path, plots=False)
    text = (tmp_path / "report.md").read_text()
    for number, question in QUESTIONS.items():
        head = f"## Q{number}. {question}"
        assert head in text
        first = text.split(head, 1)[1].lstrip("\n").split("\n", 1)[0]
        assert first and not first.startswith(("#", "|")), (number, first)
    answers = {n: text.split(f"## Q{n}.", 1)[1].split("\n\n", 2)[1] for n in QUESTIONS}
    assert answers[1].startswith("Not answered: this sweep trains no model in the target")
    assert answers[5].startswith("Not answered")
    # Q4: drops against size, and multilingual (xml, xnli@de+en) minus English (mnli): 3 less
    assert "multilingual minus English intermediate training, non-English drop" in answers[4]
    assert "-3.00" in answers[4] and "deterministic" in answers[4]
    # Q3: the gain per size (the clean scores are equal in every chain here: deterministic)
    assert "gain over 'none' tiny-s +0.00 (deterministic)" in answers[3]
    assert "the same at every size and seed (deterministic)" in answers[3]
    assert "tests in this table" in text  # every table of tests says how many


def test_question_2_contrasts_multilingual_with_english_intermediate_training():
    a = A.build_analysis(robust_records())
    (r,) = a.multilingual_vs_english
    assert r["target_task"] == "xnli" and r["english_tasks"] == "mnli"
    assert r["multilingual_tasks"] == "xml, xnli@de+en"
    # every chain has the same clean scores here: a deterministic zero difference
    assert r["diff@tiny-s"].gain.mean == pytest.approx(0)
