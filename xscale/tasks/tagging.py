"""Token tagging: UD-POS, PAN-X (named entities) and CCG supertagging.

example -> feature: the words encoded with ``is_split_into_words`` (each word on its own, as
XTREME's run_tag tokenizes word by word; a word with no sub-word becomes <unk>, as there),
the label (index in the label list) sits on the first sub-word of each word and -100 (ignored)
everywhere else. A sentence longer than max_length sub-words is cut into consecutive windows of
whole words (each window fits, with <s> and </s>), so every word of every sentence is
predicted, and scored: XTREME's scorer reads every word of the exported file, and a word left
unpredicted would be scored as a wrong default tag. feature -> batch: right-padded tensors plus,
per row, the positions of the words' first sub-words. Head: dropout -> Linear(hidden, n_labels)
per token.

Scores (0-100): PAN-X entity F1 with seqeval (`metrics.seqeval_f1`); UD-POS what XTREME reports,
seqeval F1 over the bare tags, with token accuracy beside it (`metrics.pos_accuracy_f1`); other
tasks (CCG) token accuracy.

Open label sets. CCG supertags are open-ended, so the `ccg` task has no labels in the registry:
the label list is the sorted set of tags in the *first* examples this format object featurizes
(the runner featurizes the training split first) and is kept on the object for dev and test;
a dev/test tag never seen in training can never be predicted, so it counts as an error. The
head is built with `make_head` before the labels are known and gets its output layer when they
are (the runner builds the DeepSpeed engine after featurizing the training data).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from xscale.errors import XScaleError
from xscale.tasks import metrics
from xscale.tasks.base import Example, Task
from xscale.tasks.padding import pad_batch, pad_values

IGNORE = -100


class TaggingHead(nn.Module):
    """dropout -> Linear(hidden, n_labels) on every token; `n_labels` may be set later."""

    def __init__(self, hidden: int, num_labels: int | None, dropout: float = 0.1):
        super().__init__()
        self.hidden = hidden
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels) if num_labels else None

    def build(self, num_labels: int) -> None:
        if self.classifier is None:
            self.classifier = nn.Linear(self.hidden, num_labels)
        elif self.classifier.out_features != num_labels:
            raise XScaleError(
                f"tagging head has {self.classifier.out_features} labels, the data {num_labels}"
            )

    def forward(self, hidden_states: torch.Tensor, batch: dict) -> torch.Tensor:
        if self.classifier is None:
            raise XScaleError(
                "tagging head: the label set is not known yet; featurize the training examples"
                " before the first forward pass"
            )
        return self.classifier(self.dropout(hidden_states))


class TaggingFormat:
    name = "tagging"
    trains = True

    def __init__(self):
        self.labels: tuple[str, ...] | None = None  # set from the first examples for open sets
        self._heads: list[TaggingHead] = []

    def label_list(self, task: Task, examples: list[Example] | None = None) -> tuple[str, ...]:
        if task.labels:
            return tuple(task.labels)
        if self.labels is None:
            if not examples:
                raise XScaleError(
                    f"{task.name}: its tags are read from the training data; featurize the"
                    " training examples first"
                )
            self.labels = tuple(sorted({t for e in examples for t in e.fields["tags"]}))
            for head in self._heads:
                head.build(len(self.labels))
        return self.labels

    def featurize(self, task: Task, examples: list[Example], tokenizer, max_length: int):
        """One feature per window of whole words (one window when the sentence fits); each
        carries its sentence's index, the words it covers and, in its first window, the gold tags
        of the whole sentence (what `score` and `export` line up with)."""
        if not examples:
            return []
        labels = self.label_list(task, examples)
        index = {t: i for i, t in enumerate(labels)}
        words = [list(e.fields["tokens"]) for e in examples]
        features = []
        for i, ex in enumerate(examples):
            tags = list(ex.fields["tags"])
            if task.labels:
                unknown = [t for t in tags if t not in index]
                if unknown:
                    raise XScaleError(
                        f"{task.name}: example {ex.guid} has tag {unknown[0]!r}, not one of"
                        f" {', '.join(labels)}"
                    )
            spans = self.windows(tokenizer, words[i], max_length)
            for k, (lo, hi) in enumerate(spans):
                part = self._encode(tokenizer, words[i][lo:hi], max_length)
                ids, word_ids = part
                label_ids = [IGNORE] * len(ids)
                starts, gold, kept = [], [], []
                previous = None
                for pos, w in enumerate(word_ids):
                    if w is not None and w != previous:
                        label_ids[pos] = index.get(tags[lo + w], IGNORE)
                        starts.append(pos)
                        gold.append(tags[lo + w])
                        kept.append(lo + w)
                    previous = w
                feature = {
                    "input_ids": ids,
                    "labels": label_ids,
                    "word_starts": starts,
                    "tags": gold,
                    "word_index": kept,  # which word of the sentence each start is
                    "n_words": len(words[i]),
                    "sentence": i,
                }
                if k == 0:
                    feature["sentence_tags"] = tags
                features.append(feature)
        return features

    @staticmethod
    def windows(tokenizer, words: list[str], max_length: int) -> list[tuple[int, int]]:
        """[lo, hi) word spans, consecutive and covering every word, each encoding to at most
        `max_length` tokens with the special tokens (a single word longer than that is its
        own window, truncated to its first sub-words)."""
        if not words:
            return [(0, 0)]
        budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
        enc = tokenizer([words], is_split_into_words=True, add_special_tokens=False)
        counts = [0] * len(words)
        for w in enc.word_ids(0):
            if w is not None:
                counts[w] += 1
        spans, lo, used = [], 0, 0
        for j, n in enumerate(counts):
            n = max(n, 1)  # a word with no sub-word becomes <unk>: one token
            if used + n > budget and j > lo:
                spans.append((lo, j))
                lo, used = j, 0
            used += n
        spans.append((lo, len(words)))
        return spans

    def _encode(self, tokenizer, words: list[str], max_length: int) -> tuple[list, list]:
        """(input ids, word id per position) of one window; a word with no sub-word becomes
        <unk> (XTREME's run_tag), so every word has a first sub-word to carry its label."""
        one = tokenizer([words], is_split_into_words=True, truncation=True, max_length=max_length)
        ids, word_ids = one["input_ids"][0], one.word_ids(0)
        empty = self._empty_words(word_ids, len(words), len(ids) >= max_length)
        if empty:
            fixed = [tokenizer.unk_token if j in empty else w for j, w in enumerate(words)]
            one = tokenizer(
                [fixed], is_split_into_words=True, truncation=True, max_length=max_length
            )
            ids, word_ids = one["input_ids"][0], one.word_ids(0)
        return ids, word_ids

    @staticmethod
    def _empty_words(word_ids: list, n_words: int, truncated: bool) -> set[int]:
        present = {w for w in word_ids if w is not None}
        if not present:
            return set(range(n_words)) if not truncated else set()
        limit = n_words if not truncated else max(present)
        return {j for j in range(limit) if j not in present}

    def collate(self, features: list[dict], pad_id: int) -> dict:
        ids, mask = pad_batch([f["input_ids"] for f in features], pad_id)
        labels = pad_values([f["labels"] for f in features], IGNORE, ids.shape[1])
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "word_starts": [f["word_starts"] for f in features],
        }

    def make_head(self, task: Task, hidden_size: int):
        n = len(task.labels) or (len(self.labels) if self.labels else None)
        head = TaggingHead(hidden_size, n)
        if n is None:
            self._heads.append(head)
        return head

    @staticmethod
    def loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        labels = batch["labels"]
        if not bool((labels != IGNORE).any()):  # nothing to learn from: no NaN
            return logits.float().sum() * 0.0
        return F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
        )

    def predict(self, logits: torch.Tensor, batch: dict) -> list[list[int]]:
        """Per feature: the predicted label index of each (kept) word."""
        best = logits.argmax(dim=-1).cpu()
        return [best[i, starts].tolist() for i, starts in enumerate(batch["word_starts"])]

    @staticmethod
    def default_tag(labels: tuple[str, ...]) -> str:
        """The tag written for a word cut off by truncation: "O" (outside any entity) when the
        label set has it (PAN-X), else "X" (UPOS's "other") when it has that (UD-POS), else the
        first label."""
        for tag in ("O", "X"):
            if tag in labels:
                return tag
        return labels[0]

    def sentences(
        self, task: Task, predictions: list, features: list
    ) -> tuple[list[list[str]], list[list[str]]]:
        """(gold, predicted) tags per sentence, every word of it, windows merged back: exactly
        the lines `export` writes and XTREME's scorer reads. A word without a prediction (none,
        since windows cover every word; kept for features made elsewhere) gets `default_tag`."""
        labels = self.label_list(task)
        default = self.default_tag(labels)
        gold: list[list[str]] = []
        pred: list[list[str]] = []
        current = None
        for p, f in zip(predictions, features, strict=True):
            sentence = f.get("sentence")
            if sentence is None or sentence != current:
                n_words = f.get("n_words", len(p))
                gold.append(list(f.get("sentence_tags", f.get("tags", ()))))
                pred.append([default] * n_words)
                current = sentence
            for w, j in zip(f.get("word_index", range(len(p))), p, strict=True):
                pred[-1][w] = labels[j]
        return gold, pred

    def export(self, task: Task, lang: str, predictions: list, features: list, out_dir) -> None:
        """XTREME's submission layout for tagging (udpos, panx): ``<out>/test-<lang>.tsv``, one
        predicted tag per line for every word of a sentence, in order, and a blank line after
        each sentence (XTREME's ``evaluate.py`` reads it with ``read_tag``)."""
        _, pred = self.sentences(task, predictions, features)
        lines = []
        for tags in pred:
            lines.extend(f"{t}\n" for t in tags)
            lines.append("\n")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"test-{lang}.tsv").write_text("".join(lines), encoding="utf-8")

    def score(self, task: Task, predictions: list, features: list[dict]) -> dict[str, float]:
        """Scores over every word of every sentence (the exported file's lines)."""
        if not features:
            return {}
        gold, pred = self.sentences(task, predictions, features)
        if task.scoring == "pos":
            return metrics.pos_accuracy_f1(gold, pred)
        if task.metric == "f1":
            return metrics.seqeval_f1(gold, pred)
        flat_gold = [t for s in gold for t in s]
        flat_pred = [t for s in pred for t in s]
        if not flat_gold:
            return {}
        return metrics.accuracy(flat_pred, flat_gold)
