"""`xscale perturb`: what a perturbation set does to a few test examples, beside the originals,
before a sweep spends compute on it.

    xscale perturb --task xnli --lang de --set typo
    xscale perturb --task xnli --lang de --set cm --sweep sweeps/smoke.yaml
    xscale perturb --task xnli --lang en --set '{family: codemix, languages: [de], budget: 2}'
    xscale perturb --task xnli --lang en --set pg --sweep sweeps/smoke.yaml \
        --model runs/smoke/stages/tar-tiny-s-.../

`--set` is a plain name, a set the `--sweep` file declares, or a set written as a YAML mapping.
An attack needs the trained model it attacks: `--model` is a target stage's folder (or its
`model/`), which holds the encoder and, since target stages export it, the task head; the
attack then prints, per example, the model's loss on the gold label before and after, whether
its prediction went from right to wrong, and the queries it took. Nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.stage.robustness import SetEval, label_scorer, load_head_model
from xscale.sweep.perturbations import (
    ATTACKS,
    DEFAULTS,
    PLAIN,
    SetBase,
    as_set,
    parse_set,
    set_name,
    why_not,
)
from xscale.sweep.schema import load_sweep
from xscale.sweep.spaces import FieldError
from xscale.tasks import format_info, get_format
from xscale.tasks.base import Example, Task
from xscale.tasks.registry import get_task

DEFAULT_MAX_LENGTH = 128


def resolve_set(text: str, sweep_file: str | None) -> tuple[SetBase, object | None]:
    """(the set `--set` names, the loaded sweep or None)."""
    cfg = load_sweep(sweep_file) if sweep_file else None
    declared = {set_name(e): e for e in (cfg.perturbations if cfg else [])}
    if text in declared:
        return as_set(declared[text]), cfg
    if text in DEFAULTS:
        return DEFAULTS[text], cfg
    if text.lstrip().startswith("{"):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise XScaleError(f"--set: not a YAML mapping ({' '.join(str(e).split())})") from None
        try:
            return as_set(parse_set(raw, "--set", base=str(Path.cwd()))), cfg
        except FieldError as e:
            raise XScaleError(f"{e.path}: {e.message}") from None
    known = ", ".join([*PLAIN, *declared])
    raise XScaleError(
        f"--set: unknown set {text!r} (known: {known}; or a YAML mapping such as"
        " '{family: codemix, languages: [de], rate: 0.3}')"
    )


def describe(pset: SetBase) -> str:
    fields = pset.model_dump(mode="json", exclude={"name", "family", "lexicon"})
    if not fields.get("context"):
        fields.pop("context", None)
    parts = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
             for k, v in fields.items() if v is not None]  # fmt: skip
    if getattr(pset, "lexicon", None) is not None:
        lex = pset.lexicon
        parts.append(f"lexicon={lex.muse or 'induced from ' + '+'.join(lex.induce_from)}")
    return f"{pset.family}" + (f" ({' '.join(parts)})" if parts else "")


def _texts(task: Task, ex: Example) -> list[tuple[str, str]]:
    """(label, text) of what a person reads of an example."""
    info = format_info(task)
    if info.token_level:
        pairs = zip(ex.fields["tokens"], ex.fields["tags"])
        return [("tokens", " ".join(f"{t}/{g}" for t, g in pairs))]
    out = []
    keys = list(info.text_fields) + (["context"] if task.format == "span_qa" else [])
    for key in keys:
        value = ex.fields.get(key)
        if isinstance(value, str):
            out.append((key, value))
        elif isinstance(value, list):
            out += [(f"{key}.{i}", v) for i, v in enumerate(value)]
    if task.format == "span_qa":
        ctx = ex.fields["context"]
        spans = []
        for a in ex.fields["answers"]:
            there = ctx[a["answer_start"] :][: len(a["text"])]
            spans.append(f"{a['text']!r}@{a['answer_start']} (the context there: {there!r})")
        out.append(("answers", "; ".join(spans)))
    return out


def _model_setup(model: str, task: Task):
    """A scorer over the model folder's encoder and head, in batches of 64."""
    import torch

    tokenizer, encoder, head = load_head_model(model, task)
    spec = Path(model) / "spec.json"
    if not spec.is_file():
        spec = Path(model).parent / "spec.json"
    max_length = DEFAULT_MAX_LENGTH
    if spec.is_file():
        max_length = json.loads(spec.read_text()).get("hparams", {}).get("max_length", max_length)
    fmt = get_format(task)
    module = torch.nn.ModuleDict({"encoder": encoder, "head": head})

    def forward(batch):
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
        return head(encoder(**inputs).last_hidden_state, batch)

    def collate(feats):
        return fmt.collate(feats, tokenizer.pad_token_id)

    return label_scorer(module, forward, fmt, task, tokenizer, collate, max_length, 64)


def preview(
    task_name: str,
    lang: str,
    set_text: str,
    sweep: str | None = None,
    model: str | None = None,
    n: int = 5,
    data_root: str | None = None,
    seed: int = 0,
    split: str = "test",
) -> str:
    """The report `xscale perturb` prints."""
    task = get_task(task_name)
    pset, cfg = resolve_set(set_text, sweep)
    reason = why_not(pset, task.name)
    if reason:
        raise XScaleError(f"--set {pset.name}: cannot apply to --task {task.name}: {reason}")
    root = data_root or (cfg.data.root_for(task.name) if cfg is not None else xdata.FIXTURES)
    examples = xdata.load_examples(task, split, lang, root, limit=n)
    scorer = None
    if pset.family in ATTACKS:
        if model is None:
            raise XScaleError(
                f"--set {pset.name}: the {pset.family} attack queries a trained model: give"
                " --model <target stage folder>"
            )
        scorer = _model_setup(model, task)
    sets = SetEval(task, None, root, seed, n, (pset,), scorer=scorer)
    p, res = sets.perturb(pset, examples)
    lines = [
        f"{task.name} {lang} {split}, set {pset.name}: {describe(pset)}; seed {seed};"
        f" data root {root}; {len(examples)} examples"
    ]
    by_index = dict(zip(p.kept, p.examples))
    for i, ex in enumerate(examples):
        label = ex.fields.get("label")
        lines.append("")
        lines.append(f"[{i + 1}] {ex.guid}" + (f"  (label: {label})" if label is not None else ""))
        new = by_index.get(i)
        if new is None:
            lines.append(
                "  excluded: a gold answer is not where its offset says, nor once elsewhere"
            )
            continue
        for (key, old), (_, text) in zip(_texts(task, ex), _texts(task, new)):
            lines.append(f"  {key:<8} {old}")
            lines.append(f"  {'':<8} {'(unchanged)' if text == old else '-> ' + text}")
        if res is not None:
            if not res.attacked[i]:
                lines.append(
                    f"  model: wrong already (loss {res.loss_before[i]:.3f}); not attacked"
                )
            else:
                verdict = "right -> WRONG" if res.fooled[i] else "still right"
                lines.append(
                    f"  model: {verdict} (gold-label loss {res.loss_before[i]:.3f} ->"
                    f" {res.loss_after[i]:.3f}), {len(res.edits[i])} edits,"
                    f" {res.queries[i]} queries"
                )
    if p.excluded:
        lines.append(f"\n{p.excluded} of {len(examples)} examples excluded (labels not kept)")
    return "\n".join(lines)
