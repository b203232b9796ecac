"""Sentence retrieval: BUCC 2018 (bitext mining) and Tatoeba (translation search).

No fine-tuning (``trains = False``): as XTREME, the (pretrained or intermediate-trained)
encoder embeds each sentence by pooling the hidden states of one layer, and the embeddings are
searched. Defaults per task are those of XTREME's scripts (`TASK_DEFAULTS`; both configurable
with `retrieval_layer` / `retrieval_pooling`):

- BUCC (``scripts/run_bucc2018.sh``): ``--pool_type cls --specific_layer 7`` for every model:
  the <s> token's state of layer 7.
- Tatoeba (``scripts/run_tatoeba.sh``): mean pooling (``evaluate_retrieval.py``'s default),
  ``LAYER=7``, and 13 for XLM-R large; ``default_layer`` keeps that relative depth for other
  sizes: 19 for XL (36 layers), 25 for XXL (48).

``layer`` is XTREME's ``specific_layer``: a 0-based index into the transformer layers' outputs,
i.e. ``hidden_states[layer + 1]`` in Hugging Face terms (``hidden_states[0]`` is the embedding
output); models with fewer layers (the tiny sizes) use their last. ``pooling="mean"``: the mean
over non-padding tokens, <s> and </s> included (XTREME's mean_pool_embedding); ``"cls"``: the
<s> token's state.

Tatoeba: each English sentence queries the non-English ones by cosine similarity; accuracy
(`metrics.tatoeba_accuracy`). BUCC: margin-based mining both ways (`metrics.mine_bucc`, k=4,
ratio margin); the F1-optimal threshold is chosen on the dev split and applied to the test split
(`metrics.bucc_f1`), as XTREME. When the data root has only one of the two splits (as
``../shared/data``, dev only), the threshold is chosen on that split and its F1 is reported,
with a warning: that score is optimistic. Metric names: tatoeba ``accuracy``; bucc ``f1``
(plus precision, recall, threshold).

Predictions (``evaluate(..., pred_dir=...)``), in XTREME's submission layout (its
``evaluate.py`` reads both with ``read_label``): Tatoeba ``<pred_dir>/test-<lang>.tsv``, line i
the 0-based index of the non-English sentence retrieved for English sentence i (right when it
is i); BUCC ``<pred_dir>/<split>-<lang>.tsv`` for the split scored (``test``, or ``dev`` when
only dev is present), one mined pair ``<lang id>\t<en id>`` per line, the pairs the F1 counts.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from xscale import data
from xscale.errors import XScaleError
from xscale.tasks import metrics
from xscale.tasks.base import Task

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


def default_layer(num_layers: int) -> int:
    """XTREME's layer 7 for 12 layers, the same relative depth for others (see module doc)."""
    return max(0, min(num_layers // 2 + 1, num_layers - 1))


def _layer7(num_layers: int) -> int:
    return max(0, min(7, num_layers - 1))


# scoring variant (Task.scoring) -> (pooling, layer for a model of n layers), as XTREME's
# scripts run them: BUCC's mining with the [CLS] vector of layer 7, Tatoeba's mean pooling
TASK_DEFAULTS = {"mining": ("cls", _layer7), "sentences": ("mean", default_layer)}


def task_defaults(task: Task, num_layers: int) -> tuple[str, int]:
    """(pooling, layer) XTREME uses for `task` on a model of `num_layers` layers."""
    pooling, layer = TASK_DEFAULTS.get(task.scoring, ("mean", default_layer))
    return pooling, layer(num_layers)


class RetrievalFormat:
    name = "retrieval"
    trains = False

    # --- not fine-tuned ---------------------------------------------------------------------
    def _no_training(self, *args, **kwargs):
        raise XScaleError(
            "retrieval tasks (bucc, tatoeba) are not fine-tuned: evaluate them with"
            " RetrievalFormat.evaluate(encoder, tokenizer, task, root, langs)"
        )

    featurize = collate = make_head = loss = predict = score = _no_training

    # --- embeddings -------------------------------------------------------------------------
    def embed(
        self,
        encoder,
        tokenizer,
        sentences: list[str],
        *,
        layer: int,
        pooling: str = "mean",
        max_length: int = 512,
        batch_size: int = 32,
        device=None,
    ) -> np.ndarray:
        """(len(sentences), hidden) float32 embeddings, in the order of `sentences`."""
        return self.embed_layers(
            encoder,
            tokenizer,
            sentences,
            layers=[layer],
            pooling=pooling,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
        )[layer]

    @torch.inference_mode()
    def embed_layers(
        self,
        encoder,
        tokenizer,
        sentences: list[str],
        *,
        layers: list[int],
        pooling: str = "mean",
        max_length: int = 512,
        batch_size: int = 32,
        device=None,
    ) -> dict[int, np.ndarray]:
        """{layer: (len(sentences), hidden) float32 embeddings}: one forward pass per batch
        gives every layer asked for (alignment metrics measure them all)."""
        if pooling not in POOLINGS:
            raise XScaleError(f"retrieval: pooling must be one of {POOLINGS}, got {pooling!r}")
        num_layers = encoder.config.num_hidden_layers
        for layer in layers:
            if not 0 <= layer < num_layers:
                raise XScaleError(f"retrieval: layer {layer} is not in 0..{num_layers - 1}")
        device = device or next(encoder.parameters()).device
        positions = getattr(encoder.config, "max_position_embeddings", max_length + 2) - 2
        max_length = min(max_length, positions)
        was_training = encoder.training
        encoder.eval()
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        hidden_size = encoder.config.hidden_size
        out = {k: np.zeros((len(sentences), hidden_size), dtype=np.float32) for k in layers}
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            enc = tokenizer(
                [sentences[i] for i in chunk],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            mask = enc["attention_mask"].to(device)
            states = encoder(
                input_ids=enc["input_ids"].to(device),
                attention_mask=mask,
                output_hidden_states=True,
            ).hidden_states
            m = mask.unsqueeze(-1).float()
            for layer in layers:
                hidden = states[layer + 1].float()
                if pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
                out[layer][chunk] = pooled.cpu().numpy()
        encoder.train(was_training)
        return out

    # --- evaluation -------------------------------------------------------------------------
    def evaluate(
        self,
        encoder,
        tokenizer,
        task: Task,
        root,
        langs: list[str],
        *,
        layer: int | None = None,
        pooling: str | None = None,
        max_length: int = 512,
        batch_size: int = 32,
        limit: int | None = None,
        device=None,
        pred_dir=None,
    ) -> dict[str, dict[str, float]]:
        """Scores per language: {lang: {metric: value}} (0-100), for `task` bucc or tatoeba.

        `limit` keeps the first `limit` sentence pairs (Tatoeba) or the first `limit` sentences
        of each BUCC corpus (gold pairs outside them are dropped). With `pred_dir`, each
        language's predictions are also written there (layout in the module docstring)."""
        default_pooling, default = task_defaults(task, encoder.config.num_hidden_layers)
        layer = default if layer is None else layer
        pooling = default_pooling if pooling is None else pooling
        kw = dict(
            layer=layer,
            pooling=pooling,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
        )
        if task.scoring == "sentences":  # each sentence's translation among the others'
            return {
                lang: self._tatoeba(encoder, tokenizer, task, root, lang, limit, kw, pred_dir)
                for lang in langs
            }
        if task.scoring == "mining":  # parallel pairs mined from two comparable corpora
            return {
                lang: self._bucc(encoder, tokenizer, task, root, lang, limit, kw, pred_dir)
                for lang in langs
            }
        raise XScaleError(f"task {task.name}: no retrieval evaluation (scoring {task.scoring!r})")

    def _tatoeba(
        self, encoder, tokenizer, task, root, lang, limit, kw, pred_dir=None
    ) -> dict[str, float]:

        examples = data.load_examples(task, "test", lang, root, limit=limit)
        if not examples:
            raise XScaleError(f"task {task.name}: no sentence pairs for {lang!r} under {root}")
        src = self.embed(encoder, tokenizer, [e.fields["source"] for e in examples], **kw)
        trg = self.embed(encoder, tokenizer, [e.fields["target"] for e in examples], **kw)
        if pred_dir is not None:
            export_tatoeba(lang, tatoeba_predictions(src, trg), pred_dir)
        return metrics.tatoeba_accuracy(src, trg)

    def _bucc(
        self, encoder, tokenizer, task, root, lang, limit, kw, pred_dir=None
    ) -> dict[str, float]:

        splits = data.bucc_splits(root, lang)
        if not splits:
            data.load_bucc(task, "test", lang, root)  # raises: names the missing file
        corpora = {s: _cut(data.load_bucc(task, s, lang, root), limit) for s in splits}
        for s, c in corpora.items():
            if c.gold is None:
                raise XScaleError(
                    f"task {task.name}: {lang}-en.{s}.gold is missing under {root}; BUCC needs"
                    " gold pairs to choose its threshold and to score"
                )
        candidates = {s: self._mine(encoder, tokenizer, c, kw) for s, c in corpora.items()}
        tune = "dev" if "dev" in corpora else "test"
        threshold = metrics.bucc_f1(candidates[tune], corpora[tune].gold)["threshold"]
        scored = "test" if "test" in corpora else "dev"
        if tune == scored:
            log.warning(
                "bucc %s: only the %s split is present; its threshold is chosen on the split it"
                " scores, so the F1 is optimistic (XTREME tunes on dev, scores test)",
                lang,
                scored,
            )
        if pred_dir is not None:
            export_bucc(lang, scored, candidates[scored], threshold, pred_dir)
        return metrics.bucc_f1(candidates[scored], corpora[scored].gold, threshold=threshold)

    def _mine(self, encoder, tokenizer, corpus, kw):
        src = self.embed(encoder, tokenizer, corpus.src_texts, **kw)
        trg = self.embed(encoder, tokenizer, corpus.trg_texts, **kw)
        return metrics.mine_bucc(
            src,
            trg,
            corpus.src_ids,
            corpus.trg_ids,
            k=4,
            src_texts=corpus.src_texts,
            trg_texts=corpus.trg_texts,
        )


def tatoeba_predictions(src_emb: np.ndarray, trg_emb: np.ndarray) -> list[int]:
    """For each target (English) row, the index of its nearest source row: the search that
    `metrics.tatoeba_accuracy` scores (L2-normalised rows, L2 distance, ties to the lowest
    index)."""

    def unit(x):
        x = np.asarray(x, dtype=np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.where(norms > 0, x / np.where(norms > 0, norms, 1), x)

    x, y = unit(src_emb), unit(trg_emb)
    d = (y * y).sum(axis=1)[:, None] + (x * x).sum(axis=1)[None, :] - 2 * (y @ x.T)
    return d.argmin(axis=1).tolist()


def export_tatoeba(lang: str, predictions: list[int], out_dir) -> None:
    """``<out>/test-<lang>.tsv``: line i is the index of the sentence retrieved for query i."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"test-{lang}.tsv").write_text("".join(f"{int(p)}\n" for p in predictions))


def export_bucc(lang: str, split: str, candidates, threshold: float, out_dir) -> None:
    """``<out>/<split>-<lang>.tsv``: the mined pairs `metrics.bucc_f1` extracts at `threshold`
    (score >= threshold; a repeated pair once), ``src_id\ttrg_id`` per line, best first."""

    best: dict[tuple[str, str], float] = {}
    for src, trg, score in candidates:
        best[(src, trg)] = max(float(score), best.get((src, trg), float(score)))
    kept = sorted((p for p, v in best.items() if v >= threshold), key=lambda p: -best[p])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{split}-{lang}.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in kept))


def _cut(corpus, limit: int | None):
    if limit is None:
        return corpus

    src_ids, trg_ids = corpus.src_ids[:limit], corpus.trg_ids[:limit]
    keep_s, keep_t = set(src_ids), set(trg_ids)
    gold = None
    if corpus.gold is not None:
        gold = {(s, t) for s, t in corpus.gold if s in keep_s and t in keep_t}
    return replace(
        corpus,
        src_ids=src_ids,
        src_texts=corpus.src_texts[:limit],
        trg_ids=trg_ids,
        trg_texts=corpus.trg_texts[:limit],
        gold=gold,
    )
