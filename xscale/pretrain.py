"""The `pretrain` stage for tiny sizes: a Unigram tokenizer, then masked-LM training.

Reads `<root>/pretrain/<lang>.txt` (one sentence per line) for each configured language, trains
a SentencePiece-style Unigram tokenizer with XLM-R's special tokens, builds the size's
`XLMRobertaForMaskedLM` and trains it with 15% masking (80/10/10, as BERT) on DeepSpeed. The
output `model/` is a from_pretrained directory, so the next stage loads it as it loads a hub id.

Cross-lingual alignment (`pretrain.alignment > 0`). XLM-R aligns its languages through scale
(2.5 TB of text); a tiny model pretrained on a few thousand sentences per language does not: an
English-trained classifier then transfers to no other language (measured: XNLI fixtures en 86,
de/es/fr/zh 33-42, Tatoeba retrieval 4-7%). When the text files are line-parallel (line i of
every file says the same thing, as the shipped fixtures are), each step adds a translation-
ranking loss, as InfoXLM's cross-lingual contrast and LaBSE do: the mean-pooled last hidden
states of an English line and its translation are pulled together against the other pairs in
the batch (symmetric InfoNCE at temperature `alignment_temperature`), weighted by `alignment`.
The measured effect on tiny-s (1 seed): XNLI zero-shot de 62, es 69, fr 60, zh 40 (en 83);
Tatoeba 44-56% for de/es/fr. Real sizes never pretrain here, so they are unaffected.
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


CORPUS_TASKS = ("xnli", "pawsx")  # tasks whose training rows are parallel across languages


def corpus_files(spec: StageSpec, out: Path | None = None, write: bool = True) -> list[Path]:
    """The pretraining text, one file per language (in `hp.languages` order, the pivot first).

    `corpus: text` reads `<root>/pretrain/<lang>.txt`. A task name writes the sentences of that
    task's training split (both sentences of a pair, row by row, so the files stay parallel) to
    `<stage>/corpus/<lang>.txt` (when `write`: rank 0 of several workers) and returns those;
    with `out=None` it only checks that the training data is there (preflight)."""
    hp = spec.hparams
    if hp.corpus == "text":
        return pretrain_files(spec.data_root, tuple(hp.languages))
    from xscale.tasks.registry import get_task

    if hp.corpus not in CORPUS_TASKS:
        raise XScaleError(
            f"pretrain.corpus: {hp.corpus!r} is not a corpus; give text (pretrain/<lang>.txt) or"
            f" a task with parallel training rows ({', '.join(CORPUS_TASKS)})"
        )
    task = get_task(hp.corpus)
    have = xdata.available_languages(task, spec.data_root, "train")
    missing = [lang for lang in hp.languages if lang not in have]
    if missing:
        raise XScaleError(
            f"pretrain.corpus: {task.name} has no training data for {', '.join(missing)} under"
            f" {spec.data_root} (available: {', '.join(have) or 'none'}); set pretrain.languages"
        )
    if out is None:
        return []
    folder = out / "corpus"
    files = [folder / f"{lang}.txt" for lang in hp.languages]
    if not write:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    for lang, path in zip(hp.languages, files):
        lines = []
        for ex in xdata.load_examples(task, "train", lang, spec.data_root):
            for key in ("text_a", "text_b", "text"):
                if key in ex.fields:
                    lines.append(" ".join(str(ex.fields[key]).split()))
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        tmp.replace(path)
    return files


def _file_lines(f: Path) -> list[str]:
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise XScaleError(f"{f}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return [s.strip() for s in text.split("\n")]


def read_lines(files: list[Path], per_file: int | None) -> list[str]:
    lines: list[str] = []
    for f in files:
        text = [s for s in _file_lines(f) if s]
        lines.extend(text[:per_file] if per_file else text)
    return lines


def parallel_pairs(files: list[Path], per_file: int | None) -> list[tuple[str, str]]:
    """(English line, translation) for line i of the first file and of each other file; the
    files must be line-parallel (the same number of lines)."""
    texts = [_file_lines(f) for f in files]
    while texts and all(t and not t[-1] for t in texts):  # trailing newlines
        texts = [t[:-1] for t in texts]
    lengths = {f.name: len(t) for f, t in zip(files, texts)}
    if len(set(lengths.values())) > 1:
        counts = ", ".join(f"{k} lines in {name}" for name, k in lengths.items())
        raise XScaleError(
            f"pretrain.alignment needs line-parallel text files (line i of each file the same"
            f" sentence); these have different line counts: {counts}. Set pretrain.alignment: 0"
        )
    first, rest = texts[0], texts[1:]
    pairs = []
    for other in rest:
        for a, b in list(zip(first, other))[:per_file] if per_file else zip(first, other):
            if a and b:
                pairs.append((a, b))
    return pairs


class MLMModel(nn.Module):
    """Adapter so the training loop sees (loss, logits) from a masked-LM; with `alignment` > 0
    and a batch carrying parallel pairs (`pair_a_*`, `pair_b_*`), plus the translation-ranking
    loss (see the module docstring)."""

    export_attr = "mlm"  # export_encoder saves the whole MLM (encoder + LM head)

    def __init__(self, mlm, alignment: float = 0.0, temperature: float = 0.05):
        super().__init__()
        self.mlm = mlm
        self.alignment, self.temperature = alignment, temperature

    def _embed(self, ids, mask):
        hidden = self.mlm.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return nn.functional.normalize(pooled.float(), dim=-1)

    def forward(self, batch):
        # The LM head (a vocabulary-wide softmax) runs on the masked positions only: the loss
        # is the same as the full head's with ignore_index, at a fraction of its cost.
        hidden = self.mlm.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        labels = batch["labels"]
        where = labels != -100
        logits = self.mlm.lm_head(hidden[where])
        if logits.shape[0]:
            loss = nn.functional.cross_entropy(logits.float(), labels[where])
        else:  # nothing masked in this batch (very short lines): no MLM signal, no NaN
            loss = hidden.sum() * 0.0
        if self.alignment > 0 and "pair_a_ids" in batch:
            a = self._embed(batch["pair_a_ids"], batch["pair_a_mask"])
            b = self._embed(batch["pair_b_ids"], batch["pair_b_mask"])
            sim = a @ b.T / self.temperature
            gold = torch.arange(sim.size(0), device=sim.device)
            ranking = (
                nn.functional.cross_entropy(sim, gold) + nn.functional.cross_entropy(sim.T, gold)
            ) / 2
            loss = loss + self.alignment * ranking
        return loss, logits


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (ids, attention mask) for token id lists."""
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, x in enumerate(seqs):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return ids, mask


def run_pretrain(spec: StageSpec, out: Path, tracker, run_id) -> dict:
    from transformers import DataCollatorForLanguageModeling, XLMRobertaForMaskedLM

    from xscale.dsconfig import zero_stage
    from xscale.progress import write_stage_progress
    from xscale.runner import _ds_config
    from xscale.runtime import say

    hp = spec.hparams
    size = get_size(spec.model)
    files = corpus_files(spec, out, write=rank_world()[0] == 0)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    tok_dir = out / "tokenizer"
    vocab = hp.vocab_size or size.vocab_size
    if rank_world()[0] == 0 and not (tok_dir / "tokenizer.json").is_file():
        say(
            spec.label,
            f"training a {vocab}-piece Unigram tokenizer on {len(files)} files",
        )
        train_unigram_tokenizer(files, vocab, tok_dir)
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
    model = MLMModel(XLMRobertaForMaskedLM(config), hp.alignment, hp.alignment_temperature)
    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=hp.mlm_probability)
    pairs_a = pairs_b = []
    if hp.alignment > 0:
        pairs = parallel_pairs(files, hp.max_lines_per_language)
        pairs_a = tokenizer([a for a, _ in pairs], truncation=True, max_length=hp.max_length)
        pairs_b = tokenizer([b for _, b in pairs], truncation=True, max_length=hp.max_length)
        pairs_a, pairs_b = pairs_a["input_ids"], pairs_b["input_ids"]

    def collate(feats):
        batch = masker([{"input_ids": f["input_ids"]} for f in feats])
        return {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "labels": batch["labels"],
        }

    ds_config = _ds_config(spec, hp.batch_size)
    mlm_batch, total = single_task_batches(features, collate, hp, spec.seed)

    def get_batch(step: int):
        batch, n = mlm_batch(step)
        if pairs_a:  # parallel pairs for the ranking loss: a pure function of the step
            g = torch.Generator().manual_seed(spec.seed * 1_000_003 + step)
            idx = torch.randint(len(pairs_a), (batch["input_ids"].shape[0],), generator=g)
            batch["pair_a_ids"], batch["pair_a_mask"] = pad_batch(
                [pairs_a[i] for i in idx.tolist()], tokenizer.pad_token_id
            )
            batch["pair_b_ids"], batch["pair_b_mask"] = pad_batch(
                [pairs_b[i] for i in idx.tolist()], tokenizer.pad_token_id
            )
        return batch, n

    engine = build_engine(model, hp, total, ds_config)
    params = count_params(size, vocab_size=len(tokenizer))
    if tracker is not None:
        tracker.log_params(run_id, {**run_params(spec, params, zero_stage(ds_config))})
    say(
        spec.label,
        f"{len(features)} sentences in {len(files)} languages, {total} MLM steps"
        + (f", translation ranking on {len(pairs_a)} pairs" if pairs_a else ""),
    )

    def log(step, total_steps, loss, eps):
        say(spec.label, f"step {step}/{total_steps} mlm loss {loss:.4f} {eps:.1f} ex/s")
        if rank_world()[0] == 0:
            write_stage_progress(out, step, total_steps, loss)
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
