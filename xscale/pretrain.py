"""The `pretrain` stage for tiny sizes: a Unigram tokenizer, then masked-LM training.

Reads `<root>/pretrain/<lang>.txt` (one sentence per line) for each configured language, trains
a SentencePiece-style Unigram tokenizer with XLM-R's special tokens, builds the size's
`XLMRobertaForMaskedLM` and trains it with 15% masking (80/10/10, as BERT) on DeepSpeed. The
output `model/` is a from_pretrained directory, so the next stage loads it as it loads a hub id.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.model import export_encoder
from xscale.sizes import count_params, get_size, model_config
from xscale.stages import StageSpec, run_params
from xscale.tokenizer import train_unigram_tokenizer
from xscale.train import build_engine, rank_world, single_task_batches, train


def pretrain_files(root: str, languages: tuple[str, ...]) -> list[Path]:
    if root == xdata.HUB:
        raise XScaleError(
            "pretrain: tiny sizes pretrain on local text; set data.root (or data.tasks.pretrain)"
            " to `fixtures` or a folder holding pretrain/<lang>.txt"
        )
    base = Path(xdata.resolve_root(root)) / "pretrain"
    files = [base / f"{lang}.txt" for lang in languages]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise XScaleError(f"pretrain: missing text file {missing[0]} (one sentence per line)")
    return files


def read_lines(files: list[Path], per_file: int | None) -> list[str]:
    lines: list[str] = []
    for f in files:
        text = [s.strip() for s in f.read_text(encoding="utf-8").split("\n")]
        text = [s for s in text if s]
        lines.extend(text[:per_file] if per_file else text)
    return lines


class MLMModel(nn.Module):
    """Adapter so the training loop sees (loss, logits) from a masked-LM."""

    def __init__(self, mlm):
        super().__init__()
        self.mlm = mlm

    export_attr = "mlm"  # export_encoder saves the whole MLM (encoder + LM head)

    def forward(self, batch):
        out = self.mlm(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
        )
        return out.loss, out.logits


def run_pretrain(spec: StageSpec, out: Path, tracker, run_id) -> dict:
    from transformers import DataCollatorForLanguageModeling, XLMRobertaForMaskedLM

    from xscale.dsconfig import zero_stage
    from xscale.runner import _ds_config, say

    hp = spec.hparams
    size = get_size(spec.model)
    files = pretrain_files(spec.data_root, tuple(hp.languages))
    tok_dir = out / "tokenizer"
    if rank_world()[0] == 0 and not (tok_dir / "tokenizer.json").is_file():
        say(
            spec.label,
            f"training a {size.vocab_size}-piece Unigram tokenizer on {len(files)} files",
        )
        train_unigram_tokenizer(files, size.vocab_size, tok_dir)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))

    lines = read_lines(files, hp.max_lines_per_language)
    if hp.max_train_examples:
        lines = lines[: hp.max_train_examples]
    enc = tokenizer(lines, truncation=True, max_length=hp.max_length)
    features = [{"input_ids": ids} for ids in enc["input_ids"]]

    torch.manual_seed(spec.seed)
    config = model_config(size, vocab_size=len(tokenizer))
    model = MLMModel(XLMRobertaForMaskedLM(config))
    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=hp.mlm_probability)

    def collate(feats):
        batch = masker([{"input_ids": f["input_ids"]} for f in feats])
        return {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "labels": batch["labels"],
        }

    ds_config = _ds_config(spec, hp.batch_size)
    get_batch, total = single_task_batches(features, collate, hp, spec.seed)
    engine = build_engine(model, hp, total, ds_config)
    params = count_params(size)
    if tracker is not None:
        tracker.log_params(run_id, {**run_params(spec, params, zero_stage(ds_config))})
    say(spec.label, f"{len(features)} sentences in {len(files)} languages, {total} MLM steps")

    def log(step, total_steps, loss, eps):
        say(spec.label, f"step {step}/{total_steps} mlm loss {loss:.4f} {eps:.1f} ex/s")
        if tracker is not None:
            tracker.log_metrics(run_id, {"train.loss": loss, "train.examples_per_s": eps}, step)

    res = train(engine, total, get_batch, hp, out / "ckpt", log)
    export_encoder(engine, out / "model", tokenizer)
    metrics = {"train.final_loss": res.final_loss, "train.examples_per_s": res.examples_per_s}
    if tracker is not None:
        tracker.log_metrics(run_id, metrics, res.steps)
    return {
        "metrics": metrics,
        "steps": res.steps,
        "resumed_from_step": res.resumed_from,
        "train_seconds": res.seconds,
        "train_examples": len(features),
        "vocab_size": len(tokenizer),
        "model_params": params,
    }
