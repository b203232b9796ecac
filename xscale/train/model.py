"""Encoders and task models.

Every phase starts from a directory or hub id that `AutoModel.from_pretrained` understands: a
real size's hub id (or a local copy of it), a tiny size's `pretrain` output, or an intermediate
phase's exported encoder. Heads live beside it (finetune.MultiTaskModel); when a phase ends only
the encoder is exported, so the next phase starts with a fresh head (jiant's partial load).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from xscale.catalog.sizes import hub_unavailable_message
from xscale.errors import XScaleError


def _hub_error(source: str, err: Exception) -> XScaleError:
    return XScaleError(hub_unavailable_message(source, err))


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
        submodule.save_pretrained(str(tmp), state_dict=state)
        tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():  # a re-run's earlier export (the stage was not complete)
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
