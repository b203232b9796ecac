"""Examples from the Hugging Face hub: `datasets.load_dataset(<task.hub.dataset_id>, <config>,
split=...)`, each row converted to the task format's fields."""

from __future__ import annotations

from collections.abc import Callable

from xscale.data import readers
from xscale.data.rows import _label, held_out_split
from xscale.errors import XScaleError
from xscale.tasks.base import Example, Task


# google/xtreme names its UD-POS configs by language name.
def _hub_config(task: Task, lang: str) -> str | None:
    """The hub config; placeholders: {lang}, {code} (Tatoeba's 3-letter code) and {language}
    (google/xtreme's UD-POS language name)."""
    if not task.hub.config:
        return None
    code = readers.TATOEBA_CODES.get(lang, lang)
    return task.hub.config.format(lang=lang, code=code, language=task.hub.names.get(lang, lang))


def _load_hub(task: Task, split: str, lang: str, limit: int | None) -> list[Example]:
    hub = task.hub
    if hub is None:
        raise XScaleError(
            task.hub_missing
            or f"task {task.name} has no Hugging Face hub source; give a data root folder instead"
        )
    if split not in hub.splits:
        raise XScaleError(f"task {task.name}: {hub.dataset_id} has no {split} split with labels")
    config = _hub_config(task, lang)
    filtered = task.hub_keep is not None  # one config for every language: keep, then limit
    hub_split = hub.splits[split] + (f"[:{limit}]" if limit is not None and not filtered else "")
    name = hub.dataset_id + (f" ({config})" if config else "")
    try:
        import datasets

        rows = datasets.load_dataset(hub.dataset_id, config, split=hub_split)
    except Exception as e:  # offline, unknown id, network: one line, with the way out
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise XScaleError(
            f"task {task.name}: could not load {name} split {hub_split} from the Hugging Face hub"
            f" ({reason}). Provide the data as a local folder in XTREME download layout"
            " (<root>/xtreme/<task>/..., <root>/intermediate/<task>/...) and use it as the data"
            " root (data.root in the sweep config)"
        ) from None
    convert = task.hub_rows or HUB_ROWS.get(task.format, _hub_classification)
    examples = []
    for i, row in enumerate(rows):
        where = f"{name} row {i}"
        if filtered and not task.hub_keep(row, lang):
            continue
        fields = convert(task, row, where)
        guid = str(row["id"]) if "id" in row and task.format == "span_qa" else None
        examples.append(Example(guid or f"{task.name}-{split}-{lang}-{i}", lang, fields))
    if task.held_out_dev and split in ("train", "dev"):
        examples = held_out_split(examples, split)
    return examples


def _columns(row, names: tuple[str, ...], where: str) -> list:
    missing = [c for c in names if c not in row]
    if missing:
        raise XScaleError(f"{where}: no column(s) {', '.join(map(repr, missing))}")
    return [row[c] for c in names]


def _hub_classification(task: Task, row, where: str) -> dict:
    fields = {}
    for ours, theirs in task.hub.columns.items():
        if theirs not in row:
            raise XScaleError(f"task {task.name}: {where}: no column {theirs!r}")
        fields[ours] = row[theirs]
    fields["label"] = _hub_label(task, task.hub.label_names, fields["label"], where)
    return fields


def _hub_label(task: Task, names: tuple[str, ...] | None, value, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and names is not None:
        if not 0 <= value < len(names):
            raise XScaleError(
                f"{where}: label {value} is not a gold label (hidden test labels are -1)"
            )
        value = names[value]
    return _label(task, str(value), where)


def _hub_span_qa(task: Task, row, where: str) -> dict:
    qid, context, question, answers = _columns(row, ("id", "context", "question", "answers"), where)
    texts, starts = answers["text"], answers["answer_start"]
    return {
        "question": question,
        "context": context,
        "answers": [{"text": t, "answer_start": int(s)} for t, s in zip(texts, starts)],
        "id": str(qid),
        "is_impossible": len(texts) == 0,
    }


def _hub_tagging(task: Task, row, where: str) -> dict:
    column = task.hub.columns.get("tags", "ner_tags")
    tokens, tags = _columns(row, ("tokens", column), where)
    return {
        "tokens": list(tokens),
        "tags": [_hub_label(task, task.hub.label_names, t, where) for t in tags],
    }


def _hub_multiple_choice(task: Task, row, where: str) -> dict:
    raise XScaleError(
        f"task {task.name}: its module declares no hub_rows (a multiple-choice dataset's"
        " columns are its own)"
    )


def _hub_retrieval(task: Task, row, where: str) -> dict:
    source, target = _columns(row, ("source_sentence", "target_sentence"), where)
    return {"source": source.strip(), "target": target.strip()}


HUB_ROWS: dict[str, Callable[[Task, dict, str], dict]] = {
    "span_qa": _hub_span_qa,
    "tagging": _hub_tagging,
    "multiple_choice": _hub_multiple_choice,
    "retrieval": _hub_retrieval,
}
