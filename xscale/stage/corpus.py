"""Text for masked-LM training: `pretrain/<lang>.txt` files, or the sentences of a parallel task's
training split (XNLI, PAWS-X rows are translations of each other), read as lines or as
(English, translation) pairs. No torch here: preflight checks these files at plan time."""

from __future__ import annotations

from pathlib import Path

from xscale import data as xdata
from xscale.errors import XScaleError
from xscale.graph.stage import StageSpec
from xscale.tasks.registry import TASKS, get_task


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


def check_text_files(files: list[Path]) -> None:
    """Each pretraining text file is UTF-8 and holds at least one sentence: read in full, as the
    tokenizer and the masked-LM stage will read it, so a bad byte or an empty language stops the
    sweep in preflight (one line naming the file and line), not a trial after Ray started."""
    for f in files:
        if not any(line.strip() for line in xdata.read_utf8(f).split("\n")):
            raise XScaleError(
                f"{f}: no text (every line is blank); the stage would pretrain without this"
                " language: add sentences (one per line) or drop the language"
                " from pretrain.languages"
            )


# tasks whose training rows are parallel across languages (Task.parallel "rows")
CORPUS_TASKS = tuple(n for n, t in TASKS.items() if t.parallel == "rows")


def corpus_files(spec: StageSpec, out: Path | None = None, write: bool = True) -> list[Path]:
    """The pretraining text, one file per language (in `hp.languages` order, the pivot first).

    `corpus: text` reads `<root>/pretrain/<lang>.txt`. A task name writes the sentences of that
    task's training split (both sentences of a pair, row by row, so the files stay parallel) to
    `<stage>/corpus/<lang>.txt` (when `write`: rank 0 of several workers) and returns those;
    with `out=None` it only checks that the training data is there (preflight)."""
    hp = spec.hparams
    if hp.corpus == "text":
        return pretrain_files(spec.data_root, tuple(hp.languages))

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
