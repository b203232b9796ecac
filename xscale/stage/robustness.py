"""Perturbation sets in a target stage: lexicons, the model as an attack's scorer, each set's
scores beside the clean ones, its cost; and the task head exported for `xscale perturb`.

    spec.perturbations --as_set--> noise | codemix | attack sets
    per language:  clean test examples (first `max_examples` of them, for a capped set)
                   -> perturbed examples (an attack queries the model through `label_scorer`)
                   -> the stage's own featurize/predict/score -> `{lang}/{set}` scores:
                      the main metric and the rest, clean_<main> of the same examples,
                      examples, excluded, seconds; attacks add success_rate and mean_queries

Lexicons come from stage/lexicons.py (built once per stage and source). No torch at import:
`xscale perturb` uses this module too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.stage.lexicons import Lexicons, check_lexicon
from xscale.sweep.perturbations import (
    ATTACK_FORMATS,
    ATTACKS,
    SetBase,
    as_set,
    why_not,
)
from xscale.tasks import format_info, get_format
from xscale.tasks.attack import AttackResult, Scorer, greedy_attack, phrase_candidates
from xscale.tasks.base import Example, Task
from xscale.tasks.codemix import apply_codemix, word_candidates
from xscale.tasks.lexicon import Lexicon
from xscale.tasks.perturb import Perturbed, _rng, applies_to, apply_noise
from xscale.train.model import load_encoder, load_tokenizer

HEAD_FILE, HEAD_INFO = "head.safetensors", "head.json"


def check_stage_sets(spec, task: Task) -> None:
    """Preflight of a target stage's declared sets: labels it can keep, test data of the
    translations bumblebee swaps phrases from, and lexicons for every language pair."""
    root = spec.data_root
    langs = spec.eval_languages or xdata.available_languages(task, root, "test")
    for entry in spec.perturbations:
        if isinstance(entry, str):
            continue
        reason = why_not(entry, task.name)
        if reason:
            raise XScaleError(f"perturbations: set {entry.name!r}: {reason}")
        if entry.family == "bumblebee":
            have = xdata.available_languages(task, root, "test")
            for lang in entry.languages:
                if lang not in have:
                    raise XScaleError(
                        f"perturbations: set {entry.name!r}: {task.name} has no test data in"
                        f" {lang!r} under {root} to take phrases from (has {', '.join(have)})"
                    )
        check_lexicon(entry, langs, root)


# --------------------------------------------------------------------------- the scorer


def label_scorer(
    module, forward, fmt, task: Task, tokenizer, collate, max_length: int, batch_size: int
) -> Scorer:
    """(loss of the gold label, correct) per example, in batches sorted by length; `module`
    (the engine or a plain model) is in eval mode while it scores."""
    import torch
    import torch.nn.functional as F

    def score(examples: Sequence[Example]) -> list[tuple[float, bool]]:
        feats = fmt.featurize(task, list(examples), tokenizer, max_length)
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
        out: list[tuple[float, bool]] = [(0.0, False)] * len(feats)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(order), batch_size):
                    idx = order[i : i + batch_size]
                    batch = collate([feats[j] for j in idx])
                    logits = forward(batch).float()
                    labels = batch["labels"].to(logits.device)
                    loss = F.cross_entropy(logits, labels, reduction="none").tolist()
                    right = (logits.argmax(dim=-1) == labels).tolist()
                    for j, value, ok in zip(idx, loss, right):
                        out[j] = (value, ok)
        finally:
            module.train(was_training)
        return out

    return score


# --------------------------------------------------------------------------- the sets


@dataclass
class SetEval:
    """What evaluating perturbation sets on one trained model needs. `run(examples)` gives the
    stage's (features, predictions); `scorer` is None where no attack can run."""

    task: Task
    fmt: object
    root: str
    seed: int
    limit: int | None
    entries: tuple
    scorer: Scorer | None = None
    run: Callable | None = None
    lexicons: Lexicons = field(default=None)  # type: ignore[assignment]
    _translations: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.lexicons is None:
            self.lexicons = Lexicons(self.root)

    def sets(self) -> list[SetBase]:
        """The stage's sets (plain names only where the format has text, as always)."""
        return [as_set(e) for e in self.entries if not isinstance(e, str) or applies_to(self.task)]

    def lexicon(self, pset, lang: str) -> Lexicon:
        """The set's lexicon from `lang` into its languages (and back, for tagging)."""
        pairs = [(lang, b) for b in pset.languages if b != lang]
        if format_info(self.task).token_level:
            pairs += [(b, a) for a, b in pairs]
        return self.lexicons.get(pset.lexicon, pairs)

    def translations(self, lang: str, langs) -> dict[str, list[Example]]:
        """The test examples of each of `langs` (row i translates row i of every language)."""
        out = {}
        for other in langs:
            if other == lang:
                continue
            if other not in self._translations:
                self._translations[other] = xdata.load_examples(
                    self.task, "test", other, self.root, limit=self.limit
                )
            out[other] = self._translations[other]
        return out

    def perturb(self, pset, examples: list[Example]) -> tuple[Perturbed, AttackResult | None]:
        if pset.max_examples is not None:
            examples = examples[: pset.max_examples]
        if not examples:
            return Perturbed([], []), None
        lang = examples[0].lang
        if pset.family == "codemix":
            return apply_codemix(
                self.task, examples, pset, self.seed, self.lexicon(pset, lang)
            ), None
        if pset.family not in ATTACKS:
            return apply_noise(self.task, examples, pset, self.seed), None
        if self.scorer is None:
            raise XScaleError(f"set {pset.name!r}: the {pset.family} attack needs a trained model")
        lex = self.lexicon(pset, lang)
        if pset.family == "polygloss":
            cands = [
                [e for site in word_candidates(self.task, ex, lex, pset.languages, pset.candidates)
                 for e in site]
                for ex in examples
            ]  # fmt: skip
        else:
            if self.task.parallel != "rows":
                raise XScaleError(f"set {pset.name!r}: {self.task.name} has no parallel test data")
            other = self.translations(lang, pset.languages)
            cands = [
                phrase_candidates(
                    self.task,
                    ex,
                    {b: rows[i] for b, rows in other.items() if i < len(rows)},
                    lex,
                    pset.max_phrase,
                )
                for i, ex in enumerate(examples)
            ]
        rngs = [_rng(self.seed, pset.name, ex.guid) for ex in examples]
        res = greedy_attack(examples, cands, self.scorer, pset.budget, pset.max_queries, rngs)
        return Perturbed(res.examples, list(range(len(examples)))), res

    def evaluate(self, lang: str, examples, clean: dict, feats: list, preds: list) -> dict:
        """`{lang}/{set}` scores of every set (see the module doc); `clean`, `feats`, `preds`:
        the clean test run of `examples`."""
        main, out = self.task.metric, {}
        one_each = len(feats) == len(examples)  # one feature per example: slices line up
        for pset in self.sets():
            t0 = time.perf_counter()
            p, res = self.perturb(pset, examples)
            p_feats, p_preds = self.run(p.examples)
            s = dict(self.fmt.score(self.task, p_preds, p_feats))
            if len(p.kept) == len(examples):
                ref = clean
            elif one_each:
                ref = self.fmt.score(
                    self.task, [preds[i] for i in p.kept], [feats[i] for i in p.kept]
                )
            else:
                c_feats, c_preds = self.run([examples[i] for i in p.kept])
                ref = self.fmt.score(self.task, c_preds, c_feats)
            if main in ref:
                s[f"clean_{main}"] = ref[main]
            s["examples"], s["excluded"] = float(len(p.examples)), float(p.excluded)
            if res is not None:
                s.update(attack_metrics(res, [preds[i] for i in p.kept], feats, p_preds, p_feats))
            s["seconds"] = time.perf_counter() - t0
            out[f"{lang}/{pset.name}"] = s
        return out


def attack_metrics(res: AttackResult, clean_preds, clean_feats, preds, feats) -> dict:
    """success_rate: % of the examples predicted right before that are wrong after (both from
    the stage's own predictions); mean_queries: over the examples the attack ran on."""
    out = {}
    right = [p == f["label"] for p, f in zip(clean_preds, clean_feats)]
    if any(right):
        fooled = sum(r and p != f["label"] for r, p, f in zip(right, preds, feats))
        out["success_rate"] = 100.0 * fooled / sum(right)
    queries = [q for q, a in zip(res.queries, res.attacked) if a]
    if queries:
        out["mean_queries"] = fmean(queries)
    return out


def engine_scorer(engine, collate, fmt, task: Task, tokenizer, max_length: int, batch_size: int):
    """A scorer over a DeepSpeed engine (its forward gives (loss, logits)); None when no attack
    can run on the task's format."""
    if task.format not in ATTACK_FORMATS:
        return None

    def forward(batch):
        moved = {k: v.to(engine.device) if hasattr(v, "to") else v for k, v in batch.items()}
        return engine(moved)[1]

    return label_scorer(engine, forward, fmt, task, tokenizer, collate, max_length, batch_size)


def stage_sets(ctx, fitted, run) -> SetEval:
    """A stage's sets over its fitted model (finetune.Fitted): an attack queries its engine in
    batches of max(64, 2 x batch_size)."""
    spec, hp = ctx.spec, ctx.hp
    ((name, d),) = fitted.data.items()
    scorer = engine_scorer(
        fitted.engine,
        fitted.collates[name],
        d.fmt,
        d.task,
        fitted.tokenizer,
        hp.max_length,
        max(64, hp.batch_size * 2),
    )
    limit = hp.max_eval_examples
    return SetEval(d.task, d.fmt, spec.data_root, spec.seed, limit, spec.perturbations, scorer, run)


# --------------------------------------------------------------------------- the task head


def export_head(engine, name: str, task: Task, out_dir: Path) -> None:
    """The target stage's task head beside its encoder (`model/head.safetensors` and
    `head.json`), so `xscale perturb --model` can attack the trained model."""
    import torch.distributed as dist
    from safetensors.torch import save_file

    head = engine.module.heads[name]
    if engine.zero_optimization_stage() == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(head.parameters()), modifier_rank=None):
            state = {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
    else:
        state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    if dist.is_initialized() and dist.get_rank() != 0:
        return
    out = Path(out_dir)
    save_file({k: v.float() for k, v in state.items()}, str(out / HEAD_FILE))
    info = {"task": task.name, "format": task.format, "labels": list(task.labels)}
    (out / HEAD_INFO).write_text(json.dumps(info, indent=2) + "\n")


def load_head_model(model_dir: str | Path, task: Task):
    """(tokenizer, encoder, head) of a target stage's exported `model/` (or its stage folder)."""
    from safetensors.torch import load_file

    path = Path(model_dir)
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    if not (path / "config.json").is_file():
        raise XScaleError(f"--model: {model_dir} is not a model folder (no config.json)")
    if not (path / HEAD_FILE).is_file():
        raise XScaleError(
            f"--model: {path} holds an encoder but no task head ({HEAD_FILE}); an attack needs"
            " the model/ folder of a target stage (target stages export their head beside the"
            " encoder), not an intermediate or pretrain stage's"
        )
    info = json.loads((path / HEAD_INFO).read_text())
    if info.get("task") != task.name:
        raise XScaleError(f"--model: {path}'s head is for {info.get('task')!r}, not {task.name!r}")
    tokenizer, encoder = load_tokenizer(path), load_encoder(path)
    head = get_format(task).make_head(task, encoder.config.hidden_size)
    head.load_state_dict(load_file(str(path / HEAD_FILE)))
    return tokenizer, encoder, head
