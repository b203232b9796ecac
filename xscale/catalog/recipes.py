"""DeepSpeed configs: find a recipe, validate it, resolve it for one stage; memory estimates.

`load_ds_config("zero3_bf16", micro_batch_size=8, device="cuda", world_size=4)` returns the dict
to pass to `deepspeed.initialize(config=...)`:
- the JSON is found by name in `deepspeed_configs/` (`$XSCALE_DS_CONFIG_DIR` first, then the source
  checkout's folder) or taken as a path;
- it is validated: JSON syntax (with line), top-level keys against the keys DeepSpeed 0.19 reads,
  `zero_optimization` / `bf16` / `fp16` with DeepSpeed's own pydantic models, bf16 and fp16 not
  both on, and no `optimizer` / `scheduler` sections (xscale passes a torch AdamW and its own
  schedule, which also spares DeepSpeed JIT-building FusedAdam / CPUAdam). Every problem raises
  `XScaleError` naming the file and the key path;
- `"auto"` batch/clipping values are filled in from the stage's arguments (a concrete value that
  disagrees with them is an error), keys starting with `_` (comments) are dropped;
- on `device="cpu"` training is fp32 (bf16/fp16/autocast off), pinned memory is off and NVMe offload
  becomes CPU offload; with optimizer offload `zero_force_ds_cpu_optimizer` is set false, since
  DeepSpeed otherwise refuses a client (torch) optimizer. Each change is logged as a note.

`estimate_memory` reproduces the per-GPU / per-CPU model-state formulas of DeepSpeed's cold
estimators (`estimate_zero2_model_states_mem_needs`, `estimate_zero3_model_states_mem_needs`)
without importing DeepSpeed, for `xscale plan`.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from xscale.catalog.sizes import SIZES, human_params
from xscale.errors import XScaleError
from xscale.runtime import cpu_accelerator_if_no_gpu

log = logging.getLogger(__name__)

CONFIG_DIR_ENV = "XSCALE_DS_CONFIG_DIR"
AUTO = "auto"
BATCH_KEYS = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size")

# Top-level keys DeepSpeed 0.19.8 reads (DeepSpeedConfig._initialize_params and the sub-configs it
# builds, plus deepspeed.initialize's sequence/data-parallel mesh keys). The test suite checks that
# each one still occurs as a string literal in the installed DeepSpeed.
DEEPSPEED_TOP_LEVEL_KEYS = frozenset(
    """
    activation_checkpointing aio amp autotuning bf16 bfloat16 checkpoint comet comms_logger
    communication_data_type compile compression_training csv_monitor data_efficiency
    data_parallel_size data_types dataloader_drop_last datastates_ckpt disable_allgather
    disable_python_gc dump_state expert_parallel flops_profiler fp16 gradient_accumulation_steps
    gradient_allreduce_op gradient_clipping gradient_predivide_factor hybrid_engine log_level
    managed_gradient_accumulation memory_breakdown nebula optimizer pipeline prescale_gradients
    quantize_training scheduler seq_parallel_communication_data_type sequence_parallel_size
    sparse_gradients steps_per_print tensor_parallel tensorboard timers torch_autocast
    train_batch_size train_micro_batch_size_per_gpu use_data_before_expert_parallelism
    vocabulary_size wall_clock_breakdown wandb weight_quantization zero_allow_untested_optimizer
    zero_force_ds_cpu_optimizer zero_optimization
    """.split()
)
# Sections xscale does not let a config carry: it passes its own optimizer and LR schedule.
_CLIENT_OWNED = {
    "optimizer": "xscale passes its own torch AdamW (a DeepSpeed optimizer section would also "
    "JIT-build FusedAdam/CPUAdam); set the learning rate in the sweep instead",
    "scheduler": "xscale runs its own warmup/decay schedule; set it in the sweep instead",
}


# --------------------------------------------------------------------------- finding and reading


def config_dirs() -> list[Path]:
    """Where shipped recipes are looked up by name, in order."""
    dirs = []
    if os.environ.get(CONFIG_DIR_ENV):
        dirs.append(Path(os.environ[CONFIG_DIR_ENV]))
    dirs.append(Path(__file__).resolve().parents[2] / "deepspeed_configs")
    return dirs


def available_configs() -> list[str]:
    names: set[str] = set()
    for d in config_dirs():
        if d.is_dir():
            names.update(p.name for p in d.glob("*.json"))
    return sorted(names)


def find_config(name_or_path: str | os.PathLike) -> Path:
    """A recipe name (`zero3_bf16` or `zero3_bf16.json`) or a path to a JSON file."""
    text = str(name_or_path)
    as_path = Path(text).expanduser()
    if as_path.is_file():
        return as_path
    if os.sep not in text and "/" not in text:
        file_name = text if text.endswith(".json") else f"{text}.json"
        for d in config_dirs():
            if (d / file_name).is_file():
                return d / file_name
    known = ", ".join(available_configs()) or "(none found)"
    where = ", ".join(str(d) for d in config_dirs())
    raise XScaleError(
        f"deepspeed config {text!r} not found (looked in {where}; set {CONFIG_DIR_ENV} to another "
        f"folder); known configs: {known}"
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def read_config(name_or_path: str | os.PathLike) -> tuple[Path, dict]:
    """Find and parse a config (no validation): (path, dict)."""
    path = find_config(name_or_path)
    try:
        cfg = json.loads(path.read_text(), object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise XScaleError(
            f"deepspeed config {path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except ValueError as e:  # duplicate key
        raise XScaleError(f"deepspeed config {path}: {e}") from None
    if not isinstance(cfg, dict):
        raise XScaleError(f"deepspeed config {path}: top level must be a JSON object")
    return path, cfg


# --------------------------------------------------------------------------- validation


def _fail(source: Path | str, key_path: str, message: str) -> XScaleError:
    return XScaleError(f"deepspeed config {source}: {key_path}: {message}")


def _pydantic_errors(source, section: str, err) -> XScaleError:
    """Turn a pydantic ValidationError from a DeepSpeed config model into one line."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in (section, *e["loc"]))
        msg = e["msg"].replace("Assertion failed, ", "")
        if loc == "zero_optimization.stage" and e["type"] == "enum":
            msg = "must be 0, 1, 2 or 3"  # pydantic's text repeats 3 (ZeroStageEnum.max_stage)
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif not isinstance(e.get("input"), dict) and len(repr(e.get("input"))) <= 60:
            msg += f" (got {e.get('input')!r})"
        parts.append(f"{loc}: {msg}")
    return XScaleError(f"deepspeed config {source}: " + "; ".join(parts))


def _check_positive_int_or_auto(source, cfg: dict, key: str) -> None:
    value = cfg.get(key, AUTO)
    if value == AUTO:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(source, key, f'must be a positive integer or "auto" (got {value!r})')


def validate_config(cfg: dict, source: Path | str = "<dict>") -> None:
    """Raise XScaleError (naming `source` and the key path) if `cfg` is not a usable config."""

    for key in cfg:
        if key.startswith("_"):
            continue  # comment keys, dropped when resolving
        if key in _CLIENT_OWNED:
            raise _fail(source, key, f"not allowed: {_CLIENT_OWNED[key]}")
        if key not in DEEPSPEED_TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(key, DEEPSPEED_TOP_LEVEL_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(source, key, f"unknown key for DeepSpeed 0.19{hint}")

    for key in BATCH_KEYS:
        _check_positive_int_or_auto(source, cfg, key)
    clip = cfg.get("gradient_clipping", AUTO)
    if clip != AUTO and (isinstance(clip, bool) or not isinstance(clip, int | float) or clip < 0):
        raise _fail(source, "gradient_clipping", f'must be a number >= 0 or "auto" (got {clip!r})')

    for section in PYDANTIC_SECTIONS:
        if section in cfg and not isinstance(cfg[section], dict):
            raise _fail(source, section, f"must be a JSON object (got {cfg[section]!r})")
    marker = _validated_marker(cfg)
    if marker is None or not marker.is_file():
        _validate_sections(cfg, source)
        _remember_valid(marker)

    if _enabled(cfg, "fp16") and (_enabled(cfg, "bf16") or _enabled(cfg, "bfloat16")):
        raise _fail(source, "bf16.enabled/fp16.enabled", "bf16 and fp16 cannot both be enabled")


PYDANTIC_SECTIONS = ("zero_optimization", "bf16", "bfloat16", "fp16")


def _validate_sections(cfg: dict, source: Path | str) -> None:
    """The sections DeepSpeed's own pydantic models check (importing DeepSpeed and torch)."""
    cpu_accelerator_if_no_gpu()
    from deepspeed.runtime.precision_config import DeepSpeedBF16Config, DeepSpeedFP16Config
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    models = {
        "zero_optimization": DeepSpeedZeroConfig,
        "bf16": DeepSpeedBF16Config,
        "bfloat16": DeepSpeedBF16Config,
        "fp16": DeepSpeedFP16Config,
    }
    for section, model in models.items():
        if section not in cfg:
            continue
        try:
            model(**cfg[section])
        except ValidationError as e:
            raise _pydantic_errors(source, section, e) from None
        except (AssertionError, ValueError, TypeError) as e:
            raise _fail(source, section, str(e) or type(e).__name__) from None


def _validated_marker(cfg: dict) -> Path | None:
    """Where a passed validation of these sections is remembered: importing DeepSpeed (and
    torch) to check them is 2-3 s of every sweep's start, for a handful of recipes that rarely
    change. Keyed by the sections' JSON and the versions of DeepSpeed and pydantic; only
    passes are kept, so a bad section is always checked (and reported) again.
    `XSCALE_CACHE_DIR` (default `$XDG_CACHE_HOME/xscale`, `~/.cache/xscale`); set it to an
    empty string to validate every time."""
    root = os.environ.get("XSCALE_CACHE_DIR")
    if root == "":
        return None
    if root is None:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xscale")
    try:
        versions = [metadata.version(d) for d in ("deepspeed", "pydantic")]
    except metadata.PackageNotFoundError:
        return None
    body = {k: cfg[k] for k in PYDANTIC_SECTIONS if k in cfg}
    key = json.dumps([versions, body], sort_keys=True, default=str)
    return Path(root) / "recipes" / hashlib.sha256(key.encode()).hexdigest()[:32]


def _remember_valid(marker: Path | None) -> None:
    if marker is None:
        return
    try:  # best effort: a read-only home only means validating again next time
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass


def _enabled(cfg: dict, section: str) -> bool:
    body = cfg.get(section)
    return isinstance(body, dict) and bool(body.get("enabled", False))


def zero_stage(cfg: dict) -> int:
    return int((cfg.get("zero_optimization") or {}).get("stage", 0))


def offload_mode(cfg: dict) -> Literal["none", "optimizer", "optimizer+param"]:
    zero = cfg.get("zero_optimization") or {}

    def on(key: str) -> bool:
        return (zero.get(key) or {}).get("device", "none") in ("cpu", "nvme")

    if on("offload_optimizer") and on("offload_param"):
        return "optimizer+param"
    return "optimizer" if on("offload_optimizer") else "none"


def describe_config(name_or_path: str | os.PathLike) -> str:
    """Short summary of a recipe, e.g. 'ZeRO-3 bf16 offload:optimizer+param' (no validation)."""
    _, cfg = read_config(name_or_path)
    dtype = "bf16" if _enabled(cfg, "bf16") else "fp16" if _enabled(cfg, "fp16") else "fp32"
    text = f"ZeRO-{zero_stage(cfg)} {dtype}"
    offload = offload_mode(cfg)
    return text if offload == "none" else f"{text} offload:{offload}"


# --------------------------------------------------------------------------- resolution


def resolve_ds_config(
    name_or_path: str | os.PathLike | dict,
    *,
    micro_batch_size: int,
    grad_accum: int = 1,
    grad_clip: float = 1.0,
    device: Literal["cpu", "cuda"] = "cpu",
    world_size: int = 1,
) -> tuple[dict, list[str]]:
    """Validate and resolve a config for one stage: (config dict, notes on what was changed)."""
    if isinstance(name_or_path, dict):
        source, raw = "<dict>", name_or_path
    else:
        source, raw = read_config(name_or_path)
    validate_config(raw, source)
    if device not in ("cpu", "cuda"):
        raise XScaleError(f"device must be 'cpu' or 'cuda' (got {device!r})")
    cfg = {k: copy.deepcopy(v) for k, v in raw.items() if not k.startswith("_")}
    notes: list[str] = []

    wanted = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro_batch_size * grad_accum * world_size,
        "gradient_clipping": grad_clip,
    }
    for key, value in wanted.items():
        have = cfg.get(key, AUTO)
        if have != AUTO and have != value:
            raise _fail(
                source, key, f'is {have!r} but this stage needs {value!r}; set it to "auto"'
            )
        cfg[key] = value

    zero = cfg.get("zero_optimization") or {}
    if device == "cpu":
        for section in ("bf16", "bfloat16", "fp16"):
            if _enabled(cfg, section):
                cfg[section]["enabled"] = False
                notes.append(f"{section}.enabled -> false (fp32 on CPU)")
        if (cfg.get("torch_autocast") or {}).get("enabled"):
            cfg["torch_autocast"]["enabled"] = False
            notes.append("torch_autocast.enabled -> false (fp32 on CPU)")
        for key in ("communication_data_type", "seq_parallel_communication_data_type"):
            if key in cfg:
                del cfg[key]
                notes.append(f"{key} removed (fp32 on CPU)")
        for key in ("offload_optimizer", "offload_param"):
            off = zero.get(key)
            if not isinstance(off, dict):
                continue
            if off.get("device") == "nvme":
                off["device"] = "cpu"
                off.pop("nvme_path", None)
                notes.append(f"zero_optimization.{key}.device nvme -> cpu (no async I/O op on CPU)")
            if off.get("pin_memory", True) and off.get("device", "none") != "none":
                off["pin_memory"] = False
                notes.append(f"zero_optimization.{key}.pin_memory -> false (no CUDA)")
    stage = zero.get("stage", 0)
    if device == "cpu" and world_size == 1 and stage in (1, 2) and offload_mode(cfg) == "none":
        # ZeRO-1/2 partition optimizer states and gradients over the ranks: over a world of one
        # they only add bucketing and copies (7-17% of a tiny step, bench/train_throughput.py)
        cfg["zero_optimization"] = {**zero, "stage": 0}
        notes.append(f"zero_optimization.stage {stage} -> 0 (one CPU process: nothing to shard)")
    if offload_mode(cfg) != "none" and cfg.get("zero_force_ds_cpu_optimizer", True):
        cfg["zero_force_ds_cpu_optimizer"] = False
        notes.append(
            "zero_force_ds_cpu_optimizer -> false (xscale passes a torch AdamW; DeepSpeed "
            "refuses a client optimizer with optimizer offload otherwise)"
        )
    return cfg, notes


def load_ds_config(
    name_or_path: str | os.PathLike | dict,
    *,
    micro_batch_size: int,
    grad_accum: int = 1,
    grad_clip: float = 1.0,
    device: Literal["cpu", "cuda"] = "cpu",
    world_size: int = 1,
) -> dict:
    """The resolved config dict for `deepspeed.initialize`; changes are logged at INFO."""
    cfg, notes = resolve_ds_config(
        name_or_path,
        micro_batch_size=micro_batch_size,
        grad_accum=grad_accum,
        grad_clip=grad_clip,
        device=device,
        world_size=world_size,
    )
    for note in notes:
        log.info("deepspeed config %s: %s", name_or_path, note)
    return cfg


def skip_shm_comm_build() -> None:
    """Keep DeepSpeed from JIT-compiling its shared-memory comm op (~30 s on first use).

    DeepSpeed's TorchBackend builds `deepspeed_shm_comm` on CPU whenever the op probes as
    compatible, but uses it only for `inference_all_reduce` (tensor-parallel inference); ZeRO
    training all-reduces through torch.distributed (gloo). Marking the op incompatible in
    `deepspeed.ops.__compatible_ops__` (the only place 0.19 reads it) also skips probing every op.
    Call before `deepspeed.initialize` / `deepspeed.init_distributed`.
    """
    import deepspeed.ops

    ops = vars(deepspeed.ops)
    if "__compatible_ops__" in ops:
        ops["__compatible_ops__"]["deepspeed_shm_comm"] = False
    else:
        ops["__compatible_ops__"] = {"deepspeed_shm_comm": False}


# --------------------------------------------------------------------------- memory estimates


def format_table() -> str:
    """The size table as aligned text, for `xscale sizes`."""
    header = (
        "name",
        "hub id",
        "layers",
        "hidden",
        "heads",
        "ffn",
        "vocab",
        "params",
        "published",
        "deepspeed recipe",
        "per stage",
    )

    rows = [header]
    for s in SIZES.values():
        try:
            recipe = f"{describe_config(s.deepspeed_config)} ({s.deepspeed_config})"
        except XScaleError:
            recipe = f"{s.deepspeed_config} (missing)"
        gpus = f"{s.gpus_per_worker} GPU + " if s.gpus_per_worker else ""
        resources = f"{s.num_workers} x ({gpus}{s.cpus_per_worker} CPU)"
        rows.append(
            (
                s.name,
                s.hub_id or "(tiny, offline)",
                str(s.num_layers),
                str(s.hidden_size),
                str(s.num_heads),
                str(s.ffn_size),
                str(s.vocab_size),
                human_params(s.params),
                s.published,
                recipe,
                resources,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6, 7}
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
