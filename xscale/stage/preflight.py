"""One trial (`xscale run`): a trial config -> its chain of stages -> preflight -> run in order.

Preflight checks everything a user can get wrong (size, task, role, language, data files and
rows, DeepSpeed config, weights' availability) before anything is trained or written to MLflow.
"""

from __future__ import annotations

from xscale import data as xdata
from xscale.catalog.recipes import load_ds_config
from xscale.catalog.sizes import get_size
from xscale.errors import XScaleError
from xscale.graph.expand import Graph
from xscale.graph.stage import StageSpec
from xscale.stage.corpus import check_text_files, corpus_files, pretrain_files
from xscale.stage.inputs import train_languages
from xscale.stage.robustness import check_stage_sets
from xscale.tasks import format_info, get_format, trains
from xscale.tasks.registry import get_task
from xscale.train.model import check_available


def preflight(specs: list[StageSpec], check_weights: bool = True) -> None:
    """Raise XScaleError for any bad input, before training or tracking starts."""

    # names first (cheap, and the likeliest mistakes), then files and data
    for spec in specs:
        try:
            get_size(spec.model)
        except XScaleError as e:
            raise XScaleError(f"model (--model): {e}") from None
        load_ds_config(spec.deepspeed_config, micro_batch_size=spec.hparams.batch_size)
        for name in spec.tasks if spec.kind != "pretrain" else []:
            try:
                task = get_task(name)
            except XScaleError as e:  # name the trial key (and flag) the name came from
                key = (
                    "target_task (--target)"
                    if spec.kind == "target"
                    else "intermediate_task (--intermediate)"
                )
                raise XScaleError(f"{key}: {e}") from None
            role = "intermediate" if spec.kind == "cartography" else spec.kind
            if role not in task.roles:
                article = "an" if role[0] in "aeiou" else "a"
                raise XScaleError(
                    f"{role}_task (--{'target' if role == 'target' else 'intermediate'}):"
                    f" task {task.name!r} cannot be {article} {role} task"
                    f" (it is: {', '.join(task.roles)})"
                )
    for spec in specs:
        size = get_size(spec.model)
        if spec.kind == "pretrain":
            check_text_files(corpus_files(spec))
            continue
        if spec.weights_stage is None and check_weights:
            check_available(spec.model_path or size.hub_id)
        if spec.alignment is not None:
            _check_parallel_data(spec.alignment)
        if spec.hparams.continued_mlm > 0:
            root = spec.mlm_root or spec.data_root
            check_text_files(pretrain_files(root, tuple(spec.hparams.mlm_languages)))
        if spec.kind == "target":  # test data first: local files, cheaper than a hub download
            _check_test_data(spec, get_task(spec.task))
            check_stage_sets(spec, get_task(spec.task))
        for name in spec.tasks:
            task = get_task(name)
            if trains(task):
                _check_train_data(spec, task)


def _check_test_data(spec: StageSpec, task) -> None:
    root = spec.data_root
    have = xdata.available_languages(task, root, "test")
    if not have and format_info(task).pooled:
        xdata.load_pool(task, root, [])  # a pool outside the hub: says where its files come from
    wanted = spec.eval_languages or have
    for lang in wanted:
        if lang not in have:
            raise XScaleError(
                f"eval_languages: {task.name} has no test data for {lang!r} under {root}"
                f" (available: {', '.join(have) or 'none'})"
            )
        examples = xdata.load_examples(
            task, "test", lang, root, limit=spec.hparams.max_eval_examples
        )
        if not examples:
            raise XScaleError(
                f"{task.name} test data in {lang!r} under {root}: no examples (an empty file?);"
                f" remove it or set eval_languages"
            )
        check = getattr(get_format(task), "check_examples", None)
        if check is not None:  # what scoring needs of the test rows (span QA: gold answers)
            check(task, examples, f"{task.name} test data in {lang!r} under {root}")
    if not wanted:
        raise XScaleError(f"{task.name}: no test data in any language under {root}")


def _check_train_data(spec: StageSpec, task) -> None:
    root = spec.root_for(task.name)
    lim = spec.hparams.max_train_examples
    langs = train_languages(spec, task)
    if not langs:
        raise XScaleError(f"{task.name}: no training data under {root}")
    for lang in langs:
        if not xdata.load_examples(task, "train", lang, root, limit=lim):
            raise XScaleError(f"{task.name}: no {lang} training examples under {root}")
    xdata.load_examples(task, "dev", "en", root, limit=spec.hparams.max_eval_examples)


def _check_parallel_data(a) -> None:
    """The alignment's parallel sentences can be read for every language (sweep `alignment`)."""
    for lang in a.languages:
        xdata.parallel_pairs(get_task(a.source), lang, a.data_root, a.split, a.max_pairs)


def preflight_graph(graph: Graph) -> None:
    """Every group's inputs checked once, before Ray starts or MLflow is written."""

    seen = set()
    for g in graph.groups.values():
        sample = {k: v.values[0] for k, v in g.space.items()}
        if g.samples:
            sample = g.samples[0]
        spec = g.stage(sample, "preflight" if g.parent else None)
        ident = (spec.kind, spec.task, spec.data_root, spec.eval_languages, spec.model)
        if ident in seen:
            continue
        seen.add(ident)
        preflight([spec])
