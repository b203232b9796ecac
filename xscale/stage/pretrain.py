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

import torch
from torch import nn

from xscale.catalog.recipes import zero_stage
from xscale.catalog.sizes import count_params, get_size, model_config
from xscale.graph.stage import StageResult
from xscale.runtime import say
from xscale.stage.context import StageContext, ds_config_for
from xscale.stage.corpus import corpus_files, parallel_pairs, read_lines
from xscale.stage.mlm import MaskingCollate, masked_lm_loss
from xscale.stage.tokenizer import train_unigram_tokenizer
from xscale.tasks.padding import pad_batch
from xscale.tracking.names import TRAIN_EXAMPLES_PER_S, run_params
from xscale.train.batching import step_generator
from xscale.train.distributed import rank_world
from xscale.train.loop import single_task_batches
from xscale.train.model import export_encoder, partitioned_init, recompute_activations


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
        hidden = self.mlm.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        loss, logits = masked_lm_loss(self.mlm.lm_head, hidden, batch["labels"])
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


def run_pretrain(ctx: StageContext) -> StageResult:
    from transformers import XLMRobertaForMaskedLM

    spec, out, hp = ctx.spec, ctx.out, ctx.hp
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
    ds_config = ds_config_for(spec)
    with partitioned_init(ds_config) as partitioned:  # ZeRO-3: random weights, partitioned
        mlm = XLMRobertaForMaskedLM._from_config(config) if partitioned else None
    mlm = mlm or XLMRobertaForMaskedLM(config)
    if spec.gradient_checkpointing:
        recompute_activations(mlm)
    model = MLMModel(mlm, hp.alignment, hp.alignment_temperature)
    collate = MaskingCollate(tokenizer, hp.mlm_probability, spec.seed)
    pairs_a = pairs_b = []
    if hp.alignment > 0:
        pairs = parallel_pairs(files, hp.max_lines_per_language)
        pairs_a = tokenizer([a for a, _ in pairs], truncation=True, max_length=hp.max_length)
        pairs_b = tokenizer([b for _, b in pairs], truncation=True, max_length=hp.max_length)
        pairs_a, pairs_b = pairs_a["input_ids"], pairs_b["input_ids"]

    mlm_batch, total = single_task_batches(features, collate, hp, spec.seed)

    def get_batch(step: int):
        batch, n = mlm_batch(step)
        if pairs_a:  # parallel pairs for the ranking loss: a pure function of the step
            g = step_generator(spec.seed, step)  # the masking's stream (stage/mlm.py) too
            idx = torch.randint(len(pairs_a), (batch["input_ids"].shape[0],), generator=g)
            batch["pair_a_ids"], batch["pair_a_mask"] = pad_batch(
                [pairs_a[i] for i in idx.tolist()], tokenizer.pad_token_id
            )
            batch["pair_b_ids"], batch["pair_b_mask"] = pad_batch(
                [pairs_b[i] for i in idx.tolist()], tokenizer.pad_token_id
            )
        return batch, n

    params = count_params(size, vocab_size=len(tokenizer))
    ctx.log_params(run_params(spec, params, zero_stage(ds_config)))
    say(
        spec.label,
        f"{len(features)} sentences in {len(files)} languages, {total} MLM steps"
        + (f", translation ranking on {len(pairs_a)} pairs" if pairs_a else ""),
    )

    engine, res = ctx.train(model, total, get_batch, ds_config, what="mlm loss")
    export_encoder(engine, out / "model", tokenizer)
    metrics = {"train.final_loss": res.final_loss, TRAIN_EXAMPLES_PER_S: res.examples_per_s}
    ctx.log_metrics(metrics, res.steps)
    return StageResult(
        metrics=metrics,
        steps=res.steps,
        resumed_from_step=res.resumed_from,
        train_seconds=res.seconds,
        train_examples=len(features),
        vocab_size=len(tokenizer),
        model_params=params,
    )
