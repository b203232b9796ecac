"""Encoders and task models.

Every phase starts from a directory or hub id that `AutoModel.from_pretrained` understands: a
real size's hub id (or a local copy of it), a tiny size's `pretrain` output, or an intermediate
phase's exported encoder. Heads live beside it (finetune.MultiTaskModel); when a phase ends only
the encoder is exported, so the next phase starts with a fresh head (jiant's partial load).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from xscale.catalog.sizes import hub_unavailable_message
from xscale.errors import XScaleError


def _hub_error(source: str, err: Exception) -> XScaleError:
    return XScaleError(hub_unavailable_message(source, err))


def is_zero3(ds_config: dict | None) -> bool:
    return bool(ds_config) and int((ds_config.get("zero_optimization") or {}).get("stage", 0)) == 3


@contextmanager
def partitioned_init(ds_config: dict | None) -> Iterator[bool]:
    """Models built inside this block under a ZeRO-3 config are partitioned as they are built:
    no process ever holds a whole copy (a 10.7B model is 21 GB in bf16, per process).

    transformers' `HfDeepSpeedConfig` is kept alive for the block, so `from_pretrained` builds
    the model under `deepspeed.zero.Init` and loads the checkpoint layer by layer: rank 0 reads
    each layer's values (memory-mapped safetensors), the others only the shapes, and the layer
    is scattered to its partitions (`GatheredParameters(modifier_rank=0)`); `_from_config`
    initialises random weights the same way. A collective: every rank builds the same models
    in the same order. Outside the block (and with ZeRO 0-2) models are built whole, so the
    rank-0-only work after training (exports, alignment) never waits for other ranks. Yields
    whether the block partitions."""
    if not is_zero3(ds_config):
        yield False
        return
    from transformers.integrations import HfDeepSpeedConfig
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    keep = HfDeepSpeedConfig(ds_config)  # transformers holds it by weak reference only
    try:
        yield True
    finally:
        unset_hf_deepspeed_config()
        del keep


def recompute_activations(model) -> None:
    """Gradient checkpointing: each layer keeps only its input for backward and is recomputed
    there (a third more compute; activations from L layers' worth to about one layer's).
    Non-reentrant torch checkpointing, which works with ZeRO-3's partitioned parameters."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5.2x renamed it
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def load_tokenizer(source: str | Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(source))
    except Exception as e:
        raise _hub_error(str(source), e) from None


def load_encoder(source: str | Path):
    """The encoder (no LM head, no pooler use) from a hub id or a local directory."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # dropping an LM / task head is expected, not a warning
    try:
        return AutoModel.from_pretrained(str(source), add_pooling_layer=False)
    except Exception as e:
        raise _hub_error(str(source), e) from None
    finally:
        hf_logging.set_verbosity(verbosity)


def check_available(source: str | Path) -> None:
    """Fail early (before any training or tracking) when weights cannot be found."""
    from transformers import AutoConfig

    text = str(source)
    if text.startswith((".", "/", "~")) or Path(text).expanduser().exists():
        path = Path(text).expanduser()
        if not (path / "config.json").is_file():
            raise XScaleError(
                f"model_path: {text} is not a model directory (no config.json there); give a"
                " folder saved with save_pretrained, or leave it out to use the size's hub id"
            )
    try:
        AutoConfig.from_pretrained(text)
    except Exception as e:
        raise _hub_error(str(source), e) from None


def _keep_used_conversions(model) -> None:
    """transformers' ZeRO-3 load path keeps every weight renaming it knows, used or not, and
    `save_pretrained` reverses them: an encoder loaded partitioned was exported with the legacy
    `LayerNorm.gamma` / `.beta` names (issue 23's ZeRO-3 stage test). Keep only those the load
    applied, as the ordinary load path does, so every export has the same keys."""
    conversions = getattr(model, "_weight_conversions", None)
    if conversions:
        model._weight_conversions = [c for c in conversions if c.was_used()]


def export_encoder(engine, out_dir: Path, tokenizer) -> None:
    """Save the encoder (without the head) and its tokenizer as a from_pretrained directory.

    Under ZeRO-3 the parameters are partitioned; DeepSpeed gathers them into a full state dict.
    """
    import torch.distributed as dist

    module = engine.module
    attr = getattr(module, "export_attr", "encoder")  # the submodule to save
    submodule = getattr(module, attr)
    if engine.zero_optimization_stage() == 3:
        full = engine._zero3_consolidated_16bit_state_dict()
        state = None
        if full is not None:
            n = len(attr) + 1
            state = {k[n:]: v for k, v in full.items() if k.startswith(attr + ".")}
    else:
        state = submodule.state_dict()
    if not dist.is_initialized() or dist.get_rank() == 0:
        # written under a temporary name, then renamed: a model/ folder is whole or absent
        out_dir = Path(out_dir)
        tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _keep_used_conversions(submodule)
        submodule.save_pretrained(str(tmp), state_dict=state)
        tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():  # a re-run's earlier export (the stage was not complete)
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
