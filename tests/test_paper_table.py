"""The seed paper's published rows beside a study's cells (analyze/paper.py), worked by hand."""

from __future__ import annotations

import pytest

from xscale import analyze as A
from xscale.analyze.paper import PUBLISHED
from xscale.tasks.registry import TASKS

T975_2 = 4.302653  # Student t(0.975, 2)


def rec(inter, target, seed, value, dev=None, em=None, drop_langs=(), size="xlmr-large"):
    task = TASKS[target]
    metrics = {
        f"{target}.{lang}.{task.metric}": value
        for lang in task.scored_languages("xtreme")
        if lang not in drop_langs
    }
    if em is not None:
        metrics.update(
            {f"{target}.{lang}.exact_match": em for lang in task.scored_languages("xtreme")}
        )
    if dev is not None:
        metrics["dev.score"] = dev
    return {
        "run_id": f"{size}/{inter}/{target}/{seed}",
        "status": "FINISHED",
        "start_time": 0,
        "params": {
            "model_size": size,
            "model_params": "560000000",
            "intermediate_task": inter,
            "target_task": target,
            "train_languages": "en",
            "seed": str(seed),
        },
        "metrics": metrics,
    }


def records():
    out = []
    for seed in (1, 2, 3):
        out.append(rec("none", "xnli", seed, 78 + seed, dev=75))
        # MNLI: best dev (70 > 60) though SQuAD's test scores are higher: dev picks, not test
        out.append(rec("mnli", "xnli", seed, {1: 81, 2: 82, 3: 84}[seed], dev=70))
        out.append(rec("squad", "xnli", seed, 90, dev=60))
        # XQuAD: the published column is F1; EM is logged too and must not be averaged in
        out.append(rec("none", "xquad", seed, 70, em=50))
        # MLQA: one seed misses a language of XTREME's seven
        out.append(rec("none", "mlqa", seed, 60, em=40, drop_langs=("vi",) if seed == 2 else ()))
        # TyDiQA: an intermediate cell without a dev score
        out.append(rec("none", "tydiqa", seed, 50, em=40))
        out.append(rec("squad", "tydiqa", seed, 55, em=45))
    out.append(rec("none", "pawsx", 1, 85, size="xlmr-base"))  # another size only
    return out


def row(rows, target):
    (r,) = [r for r in rows if r["target_task"] == target]
    return r


def test_paper_rows_beside_the_study_worked_by_hand():
    a = A.build_analysis(records(), main_metrics={t: TASKS[t].metric for t in TASKS})
    rows = a.paper
    assert [r["target_task"] for r in rows] == [p.target for p in PUBLISHED]
    x = row(rows, "xnli")
    assert (x["paper_xlmr_large"], x["paper_x_stilts"], x["paper_gain"]) == (79.2, 80.4, 1.2)
    assert x["study_none"].mean == pytest.approx(80)  # seeds 79, 80, 81
    assert x["study_none"].half_width == pytest.approx(T975_2 * 1 / 3**0.5)
    assert x["study_intermediate"] == "mnli"
    assert x["study_best"].mean == pytest.approx(247 / 3)
    assert x["none_minus_paper"] == pytest.approx(80 - 79.2)
    assert x["best_minus_paper"] == pytest.approx(247 / 3 - 80.4)
    assert x["study_gain"].gain.mean == pytest.approx(7 / 3)  # paired: 2, 2, 3
    assert x["note"] == ""
    assert row(rows, "xquad")["study_none"].mean == pytest.approx(70)  # F1, not (F1 + EM) / 2
    mlqa = row(rows, "mlqa")
    assert mlqa["study_none"] is None and "not scored in all 7" in mlqa["note"]
    tydi = row(rows, "tydiqa")
    assert tydi["study_none"].mean == pytest.approx(50) and tydi["study_best"] is None
    assert "no dev score" in tydi["note"]
    paws = row(rows, "pawsx")
    assert paws["study_none"] is None and "no xlmr-large / pawsx zero-shot run" in paws["note"]


def test_the_report_shows_the_table_even_without_the_papers_size(tmp_path):
    recs = [rec("none", "xnli", s, 70 + s, size="xlmr-base") for s in (1, 2)]
    a = A.build_analysis(recs, main_metrics={"xnli": "accuracy"})
    A.write_report(a, tmp_path, plots=False)
    text = (tmp_path / "report.md").read_text()
    assert "The seed paper side by side" in text
    assert "no xlmr-large / xnli zero-shot cells in this sweep" in text
    assert (tmp_path / "paper_side_by_side.csv").exists()
