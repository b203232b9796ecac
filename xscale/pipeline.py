"""One trial (`xscale run`): a trial config -> its chain of stages -> preflight -> run in order.

Preflight checks everything a user can get wrong (size, task, role, language, data files and
rows, DeepSpeed config, weights' availability) before anything is trained or written to MLflow.
"""

from __future__ import annotations

from pathlib import Path

from xscale import data as xdata
from xscale.config import TrialConfig
from xscale.errors import XScaleError
from xscale.stages import StageSpec, is_complete, read_result, stage_dir
from xscale.tasks import trains
from xscale.tasks.registry import get_task


def parse_mixture(name: str) -> tuple[str, ...] | None:
    """`mnli+sst2` (or `mix:mnli+sst2`) names a multi-task mixture; a plain name is one task."""
    body = name[4:] if name.startswith("mix:") else name
    if "+" not in body:
        return None
    tasks = tuple(sorted(t.strip() for t in body.split("+") if t.strip()))
    if len(set(tasks)) < 2:
        raise XScaleError(f"intermediate_task: a mixture needs two different tasks, got {name!r}")
    return tasks


def trial_stages(cfg: TrialConfig) -> list[StageSpec]:
    """pretrain (tiny sizes) -> intermediate (unless `none`) -> target."""
    from xscale.sizes import get_size

    size = get_size(cfg.model)
    ds = cfg.deepspeed_config or size.deepspeed_config
    specs: list[StageSpec] = []
    parent: str | None = None
    if size.tiny:
        pre = StageSpec(
            kind="pretrain",
            model=size.name,
            seed=0,  # a tiny "pretrained checkpoint" is one artifact shared by every trial seed
            hparams=cfg.pretrain,
            data_root=cfg.data.root_for("pretrain"),
            deepspeed_config=ds,
        )
        specs.append(pre)
        parent = pre.key
    mix = parse_mixture(cfg.intermediate_task) if cfg.intermediate_task != "none" else None
    common = dict(
        model=size.name,
        model_path=None if size.tiny else cfg.model_path,
        intermediate_task="mix:" + "+".join(mix) if mix else cfg.intermediate_task,
        seed=cfg.seed,
        deepspeed_config=ds,
    )
    if cfg.intermediate_task != "none":
        mixture = parse_mixture(cfg.intermediate_task)
        inter = StageSpec(
            kind="intermediate",
            task="mix:" + "+".join(mixture) if mixture else cfg.intermediate_task,
            mixture=mixture,
            mixture_cap=cfg.mixture_cap,
            train_languages="+".join(sorted(set(cfg.intermediate_languages))),
            hparams=cfg.intermediate,
            data_root=cfg.data.root
            if "+" in cfg.intermediate_task
            else cfg.data.root_for(cfg.intermediate_task),
            parent=parent,
            **common,
        )
        specs.append(inter)
        parent = inter.key
    specs.append(
        StageSpec(
            kind="target",
            task=cfg.target_task,
            target_task=cfg.target_task,
            train_languages=cfg.train_languages,
            eval_languages=cfg.eval_languages,
            perturbations=cfg.perturbations,
            hparams=cfg.target,
            data_root=cfg.data.root_for(cfg.target_task),
            parent=parent,
            **common,
        )
    )
    return specs


def preflight(specs: list[StageSpec], check_weights: bool = True) -> None:
    """Raise XScaleError for any bad input, before training or tracking starts."""
    from xscale.dsconfig import load_ds_config
    from xscale.finetune import task_names
    from xscale.model import check_available
    from xscale.pretrain import corpus_files, pretrain_files
    from xscale.sizes import get_size

    # names first (cheap, and the likeliest mistakes), then files and data
    for spec in specs:
        get_size(spec.model)
        load_ds_config(spec.deepspeed_config, micro_batch_size=spec.hparams.batch_size)
        for name in task_names(spec) if spec.kind != "pretrain" else []:
            task = get_task(name)
            if spec.kind not in task.roles:
                article = "an" if spec.kind[0] in "aeiou" else "a"
                raise XScaleError(
                    f"task {task.name!r} cannot be {article} {spec.kind} task"
                    f" (it is: {', '.join(task.roles)})"
                )
    for spec in specs:
        size = get_size(spec.model)
        if spec.kind == "pretrain":
            corpus_files(spec)
            continue
        if spec.parent is None and check_weights:
            check_available(spec.model_path or size.hub_id)
        if spec.hparams.continued_mlm > 0:
            pretrain_files(spec.mlm_root or spec.data_root, tuple(spec.hparams.mlm_languages))
        for name in task_names(spec):
            task = get_task(name)
            if trains(task):
                _check_train_data(spec, task)
        if spec.kind == "target":
            root = spec.data_root
            have = xdata.available_languages(task, root, "test")
            wanted = spec.eval_languages or have
            for lang in wanted:
                if lang not in have:
                    raise XScaleError(
                        f"eval_languages: {task.name} has no test data for {lang!r} under {root}"
                        f" (available: {', '.join(have) or 'none'})"
                    )
                xdata.load_examples(task, "test", lang, root, limit=spec.hparams.max_eval_examples)
            if not wanted:
                raise XScaleError(f"{task.name}: no test data in any language under {root}")


def _check_train_data(spec: StageSpec, task) -> None:
    from xscale.finetune import train_languages

    root = spec.data_root
    lim = spec.hparams.max_train_examples
    langs = train_languages(spec, task)
    if not langs:
        raise XScaleError(f"{task.name}: no training data under {root}")
    for lang in langs:
        if not xdata.load_examples(task, "train", lang, root, limit=lim):
            raise XScaleError(f"{task.name}: no {lang} training examples under {root}")
    xdata.load_examples(task, "dev", "en", root, limit=spec.hparams.max_eval_examples)


def run_trial(
    cfg: TrialConfig, output_dir: Path, tracking_uri: str | None, experiment: str
) -> dict[str, dict]:
    """Run the trial's stages in order (skipping complete ones); returns results by stage kind."""
    from xscale.runner import run_stage
    from xscale.runtime import say
    from xscale.tracking import Tracker, TrackingInfo, default_tracking_uri
    from xscale.train import shutdown_distributed

    specs = trial_stages(cfg)
    preflight(specs)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or default_tracking_uri(output_dir)
    artifacts = str(output_dir / "mlartifacts")
    tracker = Tracker(uri, experiment, output_dir / "mlartifacts")
    target = specs[-1]
    parent = tracker.parent_run(
        uid=f"trial-{target.key}",
        name=f"trial {cfg.model} {cfg.intermediate_task} -> {cfg.target_task} seed{cfg.seed}",
        tags={"xscale.output_dir": str(output_dir.resolve())},
    )
    info = TrackingInfo(uri, experiment, parent, artifacts)
    results: dict[str, dict] = {}
    status = "FAILED"
    try:
        for spec in specs:
            where = stage_dir(output_dir, spec)
            if is_complete(where):
                say(spec.label, f"complete, reusing {where}")
                results[spec.kind] = read_result(where)
                continue
            say(spec.label, f"starting -> {where}")
            results[spec.kind] = run_stage(spec, output_dir, info)
        status = "FINISHED"
    finally:
        tracker.finish(parent, status)
        shutdown_distributed()
    return results
