"""Stages: the unit of work, its key, its output folder and its completion marker.

A stage's key is a hash of its canonical spec and its parent's key, so the same work always lands
in the same folder `<output_dir>/stages/<key>/`, and the folder counts as complete only once
`COMPLETE` (written last) exists. Layout of a stage folder:

    spec.json      the spec that produced it (with the parent key)
    model/         a from_pretrained directory (encoder + tokenizer) for the next stage
    cartography.jsonl, map.png   a cartography stage's map (stage/cartography.py)
    subset.txt     the training examples (guids) of a subset stage
    ckpt/          DeepSpeed checkpoints while it runs (removed when complete)
    attempts.jsonl one line per execution
    progress.json  the running phase's step, total and loss (see write_stage_progress below)
    error.txt      the last failure, while the stage is not complete
    result.json    metrics and timings
    COMPLETE       written last
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xscale.sweep.difficulty import AlignmentSpec
from xscale.sweep.perturbations import PerturbationEntry
from xscale.sweep.phases import PhaseConfig, PretrainConfig, Strict
from xscale.tracking.names import DEV_SCORE

MARKER = "COMPLETE"
ERROR_FILE = "error.txt"  # the last failure's one-line reason (removed when the stage completes)
LOCK_FILE = "LOCK"  # held by the process running the stage (graph.lock)
ATTEMPTS_FILE = "attempts.jsonl"  # one line per execution (time, pid, world size)
STATES = ("done", "damaged", "failed", "started", "left")
KINDS = ("pretrain", "cartography", "intermediate", "target")
PRETRAINED = "pretrained"  # `weights`: the size's own weights (hub id or model_path)


class StageSpec(Strict):
    kind: Literal["pretrain", "cartography", "intermediate", "target"]
    model: str  # size name
    model_path: str | None = None
    task: str | None = None  # the task this stage trains (None for pretrain; a mixture's name)
    mixture: tuple[str, ...] | None = None  # the tasks of a multi-task intermediate stage
    mixture_cap: int | None = None  # examples per task in a mixture (proportional, capped)
    intermediate_task: str = "none"  # the chain's intermediate task, logged as a param
    target_task: str | None = None
    train_languages: str = "en"
    eval_languages: tuple[str, ...] | None = None
    # perturbation sets evaluated beside the clean test set: plain names as strings (the keys of
    # stages from before sets had parameters), declared sets by their non-default fields
    perturbations: tuple[PerturbationEntry, ...] = ()
    seed: int = 0
    hparams: PhaseConfig | PretrainConfig = Field(default_factory=PhaseConfig)
    data_root: str = "hub"  # where this stage's task data (or pretrain text) comes from
    # a mixture's tasks whose data come from elsewhere (the sweep's data.tasks), task -> root
    task_roots: dict[str, str] | None = None
    mlm_root: str | None = None  # text for continued MLM (default: data_root)
    deepspeed_config: str
    # the sweep's resources.<size> overrides of how the stage runs (None / False: the size
    # table's micro batch, no recomputation); in the key only when set
    micro_batch_size: int | None = None
    gradient_checkpointing: bool = False
    parent: str | None = None  # key of the stage this one needs (whose model it starts from)
    # A stage whose weights do not come from its parent: a cartography subset stage needs its
    # map (parent) but starts from the pretrained model: that stage's key, or PRETRAINED.
    weights: str | None = None
    subset: Literal["easy", "ambiguous", "hard"] | None = None  # of the parent's map
    fraction: float | None = None  # share of the training examples in the subset
    alignment: AlignmentSpec | None = None  # measured on the stage's model (stage/alignment.py)

    def canonical(self) -> str:
        """Fields left at their defaults are omitted, so adding a field with a default to the
        spec (or to a phase config) keeps the keys, and the outputs, of existing stages."""
        return json.dumps(
            self.model_dump(mode="json", exclude_defaults=True),
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def key(self) -> str:
        return f"{self.kind[:3]}-{self.model}-{key_hash(self.canonical())}"

    def root_for(self, task: str | None) -> str:
        """Where `task`'s data come from for this stage."""
        return (self.task_roots or {}).get(task or "", self.data_root)

    @property
    def weights_stage(self) -> str | None:
        """The stage whose `model/` this one starts from; None: the size's pretrained weights."""
        if self.weights is None:
            return self.parent
        return None if self.weights == PRETRAINED else self.weights

    @property
    def tasks(self) -> list[str]:
        """The tasks this stage trains or evaluates: a mixture's, or its one task."""
        return list(self.mixture) if self.mixture else [self.task]

    @property
    def label(self) -> str:
        return stage_label(self.model_dump())


def stage_label(fields: dict) -> str:
    """A stage's (or a group's) name for people: logs, progress, MLflow run names."""
    kind, model, seed = fields["kind"], fields["model"], fields.get("seed", 0)
    if kind == "pretrain":
        return f"pretrain {model} seed{seed}"
    if kind == "cartography":
        langs = fields.get("train_languages", "en")
        task = fields["task"] if langs == "en" else f"{fields['task']}@{langs}"
        return f"cartography {task} {model} seed{seed}"
    if kind == "intermediate":
        name = fields["intermediate_task"] if fields.get("subset") else fields["task"]
        return f"intermediate {name} {model} seed{seed}"
    return (
        f"target {fields['task']} <- {fields.get('intermediate_task', 'none')} {model} "
        f"[{fields.get('train_languages', 'en')}] seed{seed}"
    )


def key_hash(obj: Any) -> str:
    """The 16 hex digits of a stage's or a group's key: SHA-256 of its canonical JSON (a
    string is hashed as it is)."""
    text = (
        obj
        if isinstance(obj, str)
        else json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


STAGES = "stages"  # <output_dir>/stages/<key>/: every stage's folder


def stage_path(output_dir: Path | str, key: str) -> Path:
    """The folder of the stage called `key` in a sweep's (or trial's) output folder."""
    return Path(output_dir) / STAGES / key


def stage_dir(output_dir: Path, spec: StageSpec) -> Path:
    return stage_path(output_dir, spec.key)


def is_complete(path: Path) -> bool:
    """The marker is there and every output it records has its recorded size (a cheap check;
    `check_outputs(full=True)` hashes them)."""
    return (Path(path) / MARKER).is_file() and check_outputs(path) is None


# the outputs a marker records: the exported model, a cartography map and the result;
# checkpoints are removed
RECORDED = ("model", "cartography.jsonl", "result.json")


def _output_files(path: Path) -> list[Path]:
    files = []
    for name in RECORDED:
        p = path / name
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_marker(path: Path) -> dict | str | None:
    """The marker's record ({"files": {relative path: {"size", "sha256"}}}); None when there is
    no marker; a string saying why when it is not a record xscale wrote (damaged, edited, or an
    early xscale's bare marker): such a stage is not complete and runs again."""
    try:
        text = (Path(path) / MARKER).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as e:
        return f"{MARKER} cannot be read ({type(e).__name__})"
    try:
        record = json.loads(text)
    except ValueError:
        return f"{MARKER} is not JSON"
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not files:
        return f"{MARKER} lists no outputs"
    for rel, want in files.items():
        if (
            not isinstance(want, dict)
            or type(want.get("size")) is not int
            or not isinstance(want.get("sha256"), str)
        ):
            return f"{MARKER}'s entry for {rel!r} is not a size and a SHA-256"
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            return f"{MARKER} names {rel!r}, outside the stage folder"
    return record


# what `analyze` and the next stages read of a complete stage without hashing it themselves:
# hashed whenever a sweep starts (`verify_stage`), cheap beside the model files
REPORTED = ("result.json", "cartography.jsonl")


def check_outputs(path: Path, full: bool = False, hashed: tuple[str, ...] = ()) -> str | None:
    """None if the stage's outputs are what its marker recorded, else why not (one phrase).
    Sizes always; SHA-256 of every file with `full`, of the files named in `hashed` without."""
    path = Path(path)
    record = read_marker(path)
    if record is None:
        return f"no {MARKER} marker"
    if isinstance(record, str):
        return record
    for rel, want in record["files"].items():
        p = path / rel
        try:
            size = p.stat().st_size
        except OSError:
            return f"{rel} is missing"
        if size != want["size"]:
            return f"{rel} has {size} bytes, {want['size']} recorded"
        if (full or rel in hashed) and _sha256(p) != want["sha256"]:
            return f"{rel} does not match its recorded SHA-256"
    return None


def verify_stage(path: Path) -> str | None:
    """A sweep's check of a stage it is about to reuse (and report): sizes of every output and
    SHA-256 of what is read from it directly (REPORTED); a stage that a child is about to build
    on is hashed in full by the child (`stage/runner.py`). None, or why it cannot be reused."""
    return check_outputs(path, hashed=REPORTED)


def invalidate(path: Path, reason: str) -> None:
    """Set a complete stage back to not complete (its marker kept aside, with the reason)."""
    path = Path(path)
    try:
        (path / MARKER).replace(path / f"{MARKER}.invalid")
    except FileNotFoundError:
        return
    (path / f"{MARKER}.invalid.reason").write_text(reason + "\n", encoding="utf-8")


def stage_state(path: Path) -> str:
    """`done` (complete), `damaged` (complete once, its outputs no longer match the marker: the
    next sweep runs it again), `failed` (its last attempt raised), `started` (running, or
    stopped part-way) or `left` (never started)."""
    path = Path(path)
    if is_complete(path):
        return "done"
    if (path / MARKER).is_file():  # finished once, but its outputs changed since
        return "damaged"
    if (path / ERROR_FILE).is_file():
        return "failed"
    if (path / ATTEMPTS_FILE).is_file():
        return "started"
    return "left"


class StageResult(BaseModel):
    """What a stage leaves in `result.json`, every kind in one shape: the metrics it logged
    (`tracking/names.py`), its steps and timings, and the facts of its run. Fields a kind does
    not have stay None and are not written; unknown keys of older versions' files are ignored."""

    model_config = ConfigDict(extra="ignore")

    metrics: dict[str, float] = Field(default_factory=dict)
    steps: int = 0
    resumed_from_step: int = 0
    train_seconds: float | None = None
    train_examples: int | None = None
    eval_seconds: float | None = None  # retrieval targets: evaluation only
    zero_stage: int | None = None
    micro_batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    model_params: int | None = None
    vocab_size: int | None = None  # pretraining: the tokenizer it trained
    epochs: int | None = None  # cartography: full epochs the map is built from
    train_languages: list[str] | None = None  # in-language targets: the models trained
    alignment_seconds: float | None = None
    stage_seconds: float | None = None
    mlflow_run_id: str | None = None
    simulated: bool | None = None  # bench/cluster_sim.py's sleeps

    @property
    def dev_score(self) -> float | None:
        """The English dev metric that selects a group's stage (None when it has none)."""
        return self.metrics.get(DEV_SCORE)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), indent=2, sort_keys=True)


def mark_complete(path: Path, result: StageResult | dict) -> None:
    """Write the result, then the marker (last and atomically), recording the size and SHA-256
    of every output (`check_outputs` verifies them before reuse)."""
    path = Path(path)
    if isinstance(result, dict):
        result = StageResult.model_validate(result)
    tmp = path / "result.json.tmp"
    tmp.write_text(result.to_json())
    tmp.replace(path / "result.json")
    files = {
        str(f.relative_to(path)): {"size": f.stat().st_size, "sha256": _sha256(f)}
        for f in _output_files(path)
    }
    tmp = path / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"files": files, "time": time.time()}, indent=2))
    tmp.replace(path / MARKER)


def read_result(path: Path) -> StageResult:
    return StageResult.model_validate_json((Path(path) / "result.json").read_text())


PROGRESS_FILE = "progress.json"


def write_stage_progress(
    stage_dir: Path, step: int, total: int, loss: float, tag: str = ""
) -> None:
    """Record a running stage's position (atomically; readers never see half a file)."""
    record = {"step": step, "total": total, "loss": loss, "time": time.time(), "tag": tag.strip()}
    tmp = Path(stage_dir) / (PROGRESS_FILE + ".tmp")
    try:
        tmp.write_text(json.dumps(record))
        tmp.replace(Path(stage_dir) / PROGRESS_FILE)
    except OSError:  # progress is informative only; never fail a stage over it
        pass


def read_stage_progress(stage_dir: Path) -> dict | None:
    try:
        return json.loads((Path(stage_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
