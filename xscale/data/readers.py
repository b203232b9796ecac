"""Readers for XTREME and intermediate-task files as their upstream releases lay them out.

Each reader turns one file (or one language's files) into ``Example``s with the field names of
``xscale.tasks.base.Example``; BUCC, which is two corpora plus gold pairs rather than a list of
examples, gives a :class:`BuccCorpus`. Missing or malformed input raises ``XScaleError`` naming
the file and the line (for JSON documents: the file and the JSON path, e.g.
``data[0].paragraphs[2].qas[1]``).

Text is decoded as UTF-8 and split on "\\n" only (never ``str.splitlines``, which also splits on
U+2028 and friends inside sentences); a trailing "\\r" is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xscale.data.rows import read_utf8
from xscale.errors import XScaleError
from xscale.tasks.base import Example

# --------------------------------------------------------------------------- helpers


def _lines(path: str | Path) -> list[str]:
    """The file's lines without their "\\n" (and "\\r"); no phantom line after a final "\\n"."""
    lines = read_utf8(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def labels_beside(path: Path) -> Path:
    """The labels file of a jsonl file, as Cosmos QA and Social IQa ship them:
    `valid.jsonl` -> `valid-labels.lst`."""
    return path.with_name(f"{path.stem}-labels.lst")


def read_label_file(labels_path: Path, n_rows: int, rows_path: Path) -> list[str]:
    """One label per line, line i for row i of `rows_path` (blank lines are not labels)."""
    labels = [ln.strip() for ln in _lines(labels_path) if ln.strip()]
    if len(labels) != n_rows:
        raise XScaleError(f"{labels_path}: {len(labels)} labels but {rows_path} has {n_rows} rows")
    return labels


def _jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for each non-blank line of a JSON-lines file."""
    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise XScaleError(f"{path}:{n}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise XScaleError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        yield n, obj


def _get(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise XScaleError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise XScaleError(f"{where}: field {key!r} must be {names}, got {value!r:.60}")
    return value


def _int_label(value: Any, n_choices: int, where: str) -> int:
    """A choice index given as int or as a string of digits, checked against the choices."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < n_choices:
        raise XScaleError(
            f"{where}: label must be a choice index 0..{n_choices - 1}, got {value!r}"
        )
    return value


# --------------------------------------------------------------------------- span QA


def _squad_articles(path: str | Path) -> list:
    """The top-level ``data`` list of a SQuAD-format JSON file (one-line errors otherwise)."""
    try:
        doc = json.loads(read_utf8(path))
    except json.JSONDecodeError as e:
        raise XScaleError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    articles = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(articles, list):
        raise XScaleError(f"{path}: not SQuAD format (no top-level 'data' list)")
    return articles


def read_squad(path: str | Path, lang: str) -> list[Example]:
    """SQuAD-format JSON: XQuAD, MLQA, TyDiQA-GoldP, SQuAD v1.1 and v2.0.

    One span_qa example per question: ``question``, ``context``, ``id``, ``answers``
    ([{"text", "answer_start"}], as in the file) and ``is_impossible`` (SQuAD v2.0's flag;
    False when absent). ``guid`` is the question id, which must be unique in the file.
    Note: XTREME's TyDiQA-GoldP dev files carry hidden labels (every answer is
    ``{"text": "", "answer_start": 0}``); they are returned as they are.
    """
    articles = _squad_articles(path)
    examples: list[Example] = []
    seen: set[str] = set()
    for a, article in enumerate(articles):
        where_a = f"{path}: data[{a}]"
        if not isinstance(article, dict):
            raise XScaleError(f"{where_a}: expected an object")
        for p, para in enumerate(_get(article, "paragraphs", list, where_a)):
            where_p = f"{where_a}.paragraphs[{p}]"
            if not isinstance(para, dict):
                raise XScaleError(f"{where_p}: expected an object")
            context = _get(para, "context", str, where_p)
            for q, qa in enumerate(_get(para, "qas", list, where_p)):
                where = f"{where_p}.qas[{q}]"
                if not isinstance(qa, dict):
                    raise XScaleError(f"{where}: expected an object")
                qid = _get(qa, "id", str, where)
                question = _get(qa, "question", str, where)
                if qid in seen:
                    raise XScaleError(f"{where}: duplicate question id {qid!r}")
                seen.add(qid)
                answers = []
                for i, ans in enumerate(_get(qa, "answers", list, where)):
                    where_ans = f"{where}.answers[{i}]"
                    if not isinstance(ans, dict):
                        raise XScaleError(f"{where_ans}: expected an object")
                    a_text = _get(ans, "text", str, where_ans)
                    start = _get(ans, "answer_start", int, where_ans)
                    if not 0 <= start <= len(context):
                        raise XScaleError(f"{where_ans}: answer_start {start} is outside context")
                    answers.append({"text": a_text, "answer_start": start})
                impossible = bool(qa.get("is_impossible", False))
                fields = {
                    "question": question,
                    "context": context,
                    "answers": answers,
                    "id": qid,
                    "is_impossible": impossible,
                }
                examples.append(Example(guid=qid, lang=lang, fields=fields))
    return examples


# --------------------------------------------------------------------------- tagging


def read_tagging(path: str | Path, lang: str) -> list[Example]:
    """UD-POS / PAN-X files: ``token TAB tag`` per line, a blank line between sentences.

    PAN-X tokens may carry a ``<lang>:`` prefix (``en:Paris``); it is stripped when it is
    ``lang``'s. One tagging example per sentence: ``tokens``, ``tags``; guid ``<lang>-<i>``.
    """
    examples: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    prefix = f"{lang}:"

    def flush() -> None:
        if tokens:
            guid = f"{lang}-{len(examples)}"
            examples.append(Example(guid, lang, {"tokens": list(tokens), "tags": list(tags)}))
            tokens.clear()
            tags.clear()

    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            flush()
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise XScaleError(
                f"{path}:{n}: expected 'token<TAB>tag', got {len(parts)} tab-separated columns"
            )
        token, tag = parts[0], parts[1].strip()
        if token.startswith(prefix) and len(token) > len(prefix):
            token = token[len(prefix) :]
        if not token or not tag:
            raise XScaleError(f"{path}:{n}: empty token or tag")
        tokens.append(token)
        tags.append(tag)
    flush()
    return examples


# --------------------------------------------------------------------------- multiple choice


def read_csqa(path: str | Path) -> list[Example]:
    """CommonsenseQA jsonl: ``question.stem``, ``question.choices`` [{label, text}], ``answerKey``.

    multiple_choice fields: ``context`` "" (CSQA has no passage), ``question`` the stem,
    ``choices`` the texts in file order, ``label`` the index of ``answerKey``.
    """
    examples = []
    for n, row in _jsonl(path):
        where = f"{path}:{n}"
        question = _get(row, "question", dict, where)
        stem = _get(question, "stem", str, where)
        labels, texts = [], []
        for choice in _get(question, "choices", list, where):
            if not isinstance(choice, dict):
                raise XScaleError(f"{where}: each choice must be an object with label and text")
            labels.append(_get(choice, "label", str, where))
            texts.append(_get(choice, "text", str, where))
        if len(set(labels)) != len(labels) or len(labels) < 2:
            raise XScaleError(f"{where}: choices need at least two distinct labels, got {labels}")
        key = _get(row, "answerKey", str, where)
        if key not in labels:
            raise XScaleError(f"{where}: answerKey {key!r} is not one of the choices {labels}")
        guid = str(row.get("id", f"csqa-{n}"))
        fields = {"context": "", "question": stem, "choices": texts, "label": labels.index(key)}
        examples.append(Example(guid, "en", fields))
    return examples


def read_cosmosqa(path: str | Path, labels_path: str | Path | None = None) -> list[Example]:
    """Cosmos QA jsonl (``id, context, question, answer0..answer3``) and its labels.

    Labels come from ``labels_path``, by default ``<stem>-labels.lst`` beside the jsonl
    (``valid.jsonl`` -> ``valid-labels.lst``: one 0-3 label per line, line i for row i);
    without such a file the rows' own ``label`` field is used. When both exist they must agree.
    """
    path = Path(path)
    if labels_path is None:
        sibling = labels_beside(path)
        labels_path = sibling if sibling.is_file() else None
    rows = list(_jsonl(path))
    file_labels: list[str] | None = None
    if labels_path is not None:
        file_labels = read_label_file(Path(labels_path), len(rows), path)
    examples = []
    for i, (n, row) in enumerate(rows):
        where = f"{path}:{n}"
        choices = [_get(row, f"answer{j}", str, where) for j in range(4)]
        if file_labels is not None:
            label = _int_label(file_labels[i], 4, f"{labels_path}:{i + 1}")
            if "label" in row and _int_label(row["label"], 4, where) != label:
                raise XScaleError(f"{where}: label {row['label']!r} disagrees with {labels_path}")
        elif "label" in row:
            label = _int_label(row["label"], 4, where)
        else:
            raise XScaleError(f"{where}: no label in the row and no labels file")
        fields = {
            "context": _get(row, "context", str, where),
            "question": _get(row, "question", str, where),
            "choices": choices,
            "label": label,
        }
        examples.append(Example(str(row.get("id", f"cosmosqa-{n}")), "en", fields))
    return examples


def read_copa(path: str | Path, lang: str = "en") -> list[Example]:
    """XCOPA / COPA jsonl: ``premise, choice1, choice2, question`` (cause|effect), ``label``.

    multiple_choice fields: ``context`` the premise, ``question`` "cause" or "effect",
    ``choices`` [choice1, choice2], ``label`` 0 or 1. guid ``<lang>-<idx>``.
    """
    examples = []
    for n, row in _jsonl(path):
        where = f"{path}:{n}"
        question = _get(row, "question", str, where)
        if question not in ("cause", "effect"):
            raise XScaleError(f"{where}: question must be 'cause' or 'effect', got {question!r}")
        if "label" not in row:
            raise XScaleError(f"{where}: missing field 'label'")
        fields = {
            "context": _get(row, "premise", str, where),
            "question": question,
            "choices": [_get(row, "choice1", str, where), _get(row, "choice2", str, where)],
            "label": _int_label(row["label"], 2, where),
        }
        examples.append(Example(f"{lang}-{row.get('idx', n)}", lang, fields))
    return examples


def read_hellaswag(path: str | Path) -> list[Example]:
    """HellaSwag jsonl: ``ctx``, ``endings`` (list of 4), ``label``.

    multiple_choice fields: ``context`` the ctx, ``question`` "", ``choices`` the endings,
    ``label`` the index of the right ending (int or digit string in the file).
    """
    examples = []
    for n, row in _jsonl(path):
        where = f"{path}:{n}"
        endings = _get(row, "endings", list, where)
        if len(endings) < 2 or not all(isinstance(e, str) for e in endings):
            raise XScaleError(f"{where}: 'endings' must be a list of at least two strings")
        if "label" not in row:
            raise XScaleError(f"{where}: missing field 'label'")
        fields = {
            "context": _get(row, "ctx", str, where),
            "question": "",
            "choices": list(endings),
            "label": _int_label(row["label"], len(endings), where),
        }
        examples.append(Example(str(row.get("ind", f"hellaswag-{n}")), "en", fields))
    return examples


# --------------------------------------------------------------------------- Tatoeba

# THE mapping between ISO 639-1 codes (as XTREME names languages) and the Tatoeba file codes,
# for XTREME's 36 Tatoeba languages plus English: XTREME's `lang3_dict` in
# third_party/evaluate_retrieval.py (note cmn for zh, swh for sw, pes for fa).
TATOEBA_CODES: dict[str, str] = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell",
    "en": "eng", "es": "spa", "et": "est", "eu": "eus", "fa": "pes", "fi": "fin",
    "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind", "it": "ita",
    "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal",
    "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam",
    "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
    "zh": "cmn",
}  # fmt: skip
TATOEBA_LANGS: dict[str, str] = {v: k for k, v in TATOEBA_CODES.items()}


def tatoeba_code(lang: str) -> str:
    """ISO 639-1 -> Tatoeba 3-letter code (``de`` -> ``deu``, ``zh`` -> ``cmn``)."""
    if lang not in TATOEBA_CODES:
        raise XScaleError(
            f"no Tatoeba code for language {lang!r}; known: {', '.join(sorted(TATOEBA_CODES))}"
        )
    return TATOEBA_CODES[lang]


def tatoeba_lang(code: str) -> str:
    """Tatoeba 3-letter code -> ISO 639-1 (``cmn`` -> ``zh``)."""
    if code not in TATOEBA_LANGS:
        raise XScaleError(
            f"unknown Tatoeba code {code!r}; known: {', '.join(sorted(TATOEBA_LANGS))}"
        )
    return TATOEBA_LANGS[code]


def read_tatoeba(folder: str | Path, lang: str) -> list[Example]:
    """``tatoeba.<xxx>-eng.<xxx>`` and ``tatoeba.<xxx>-eng.eng`` in ``folder``: line i of one
    translates line i of the other. retrieval fields: ``source`` (the ``lang`` sentence) and
    ``target`` (English), stripped of surrounding whitespace as XTREME does."""
    code = tatoeba_code(lang)
    folder = Path(folder)
    src_path = folder / f"tatoeba.{code}-eng.{code}"
    trg_path = folder / f"tatoeba.{code}-eng.eng"
    src, trg = _lines(src_path), _lines(trg_path)
    if len(src) != len(trg):
        raise XScaleError(
            f"{src_path} has {len(src)} lines but {trg_path} has {len(trg)}; they must align"
        )
    return [
        Example(f"tatoeba-{lang}-{i}", lang, {"source": s.strip(), "target": t.strip()})
        for i, (s, t) in enumerate(zip(src, trg))
    ]


# --------------------------------------------------------------------------- BUCC


@dataclass
class BuccCorpus:
    """One BUCC 2018 language pair and split: two comparable corpora and the gold pairs.

    ``gold`` holds ``(src_id, en_id)`` pairs, or is None where the split has no gold file.
    """

    lang: str
    split: str
    src_ids: list[str]
    src_texts: list[str]
    trg_ids: list[str]
    trg_texts: list[str]
    gold: set[tuple[str, str]] | None


def _id_sentences(path: Path) -> tuple[list[str], list[str]]:
    ids, texts, seen = [], [], set()
    for n, line in enumerate(_lines(path), start=1):
        sid, tab, text = line.partition("\t")
        if not tab or not sid.strip():
            raise XScaleError(f"{path}:{n}: expected 'id<TAB>sentence'")
        sid = sid.strip()
        if sid in seen:
            raise XScaleError(f"{path}:{n}: duplicate id {sid!r}")
        seen.add(sid)
        ids.append(sid)
        texts.append(text.strip())
    return ids, texts


def read_bucc(folder: str | Path, lang: str, split: str = "dev") -> BuccCorpus:
    """``<lang>-en.<split>.<lang>`` and ``.en`` (``id TAB sentence``) and, when present,
    ``<lang>-en.<split>.gold`` (``<lang>_id TAB en_id``) in ``folder``. Every gold id must be
    in its corpus."""
    folder = Path(folder)
    prefix = folder / f"{lang}-en.{split}"
    src_path, trg_path = Path(f"{prefix}.{lang}"), Path(f"{prefix}.en")
    src_ids, src_texts = _id_sentences(src_path)
    trg_ids, trg_texts = _id_sentences(trg_path)
    gold_path = Path(f"{prefix}.gold")
    gold = None
    if gold_path.is_file():
        gold = set()
        src_set, trg_set = set(src_ids), set(trg_ids)
        for n, line in enumerate(_lines(gold_path), start=1):
            if not line.strip():
                continue
            parts = line.strip().split("\t")
            if len(parts) != 2:
                raise XScaleError(f"{gold_path}:{n}: expected '{lang}_id<TAB>en_id'")
            s, t = parts
            if s not in src_set or t not in trg_set:
                missing = s if s not in src_set else t
                raise XScaleError(f"{gold_path}:{n}: id {missing!r} is not in its corpus")
            gold.add((s, t))
    return BuccCorpus(lang, split, src_ids, src_texts, trg_ids, trg_texts, gold)


# --------------------------------------------------------------------------- LAReQA (XQuAD-R)


@dataclass(frozen=True)
class AnswerPool:
    """LAReQA's retrieval data, as XTREME's ``utils_lareqa.load_data`` builds it: every question
    of every language given, and the pool of every sentence of every paragraph of every language.
    ``questions[i]`` = (xling id, language, text); ``candidates[j]`` = (uid, language, sentence,
    context); ``relevant[i]`` = the candidate indices whose sentence holds the answer to question
    i in *any* language (the same xling id), which is what makes the task language-agnostic."""

    questions: list[tuple[str, str, str]]
    candidates: list[tuple[str, str, str, str]]
    relevant: list[frozenset[int]]
    skipped: int  # questions whose answer start falls in no sentence (utils_lareqa skips them)
    skipped_by_lang: dict[str, int]


def read_xquad_r(files: dict[str, str | Path]) -> AnswerPool:
    """XQuAD-R files (`{lang: path}`, SQuAD JSON plus per-paragraph ``sentence_breaks``), read
    into one multilingual pool. Candidate uid = ``<lang>_<paragraph number>_<sentence index>``,
    numbering paragraphs from 1 in file order, as utils_lareqa does."""
    questions: list[tuple[str, str, str]] = []
    candidates: list[tuple[str, str, str, str]] = []
    answer_of: dict[str, set[int]] = {}  # xling id -> candidate indices of its answer sentence
    skipped = 0
    by_lang: dict[str, int] = {}
    for lang, path in files.items():
        by_lang[lang] = 0
        articles = _squad_articles(path)
        n_para = 0
        for a, article in enumerate(articles):
            for p, para in enumerate(_get(article, "paragraphs", list, f"{path}: data[{a}]")):
                where = f"{path}: data[{a}].paragraphs[{p}]"
                n_para += 1
                context = _get(para, "context", str, where)
                breaks = _get(para, "sentence_breaks", list, where)
                first = len(candidates)
                for k, span in enumerate(breaks):
                    if not (isinstance(span, list) and len(span) == 2):
                        raise XScaleError(f"{where}.sentence_breaks[{k}]: expected [start, end]")
                    start, end = span
                    if not 0 <= start < end <= len(context):
                        raise XScaleError(f"{where}.sentence_breaks[{k}]: {span} outside context")
                    uid = f"{lang}_{n_para}_{k}"
                    candidates.append((uid, lang, context[start:end], context))
                for q, qa in enumerate(_get(para, "qas", list, where)):
                    where_q = f"{where}.qas[{q}]"
                    answers = _get(qa, "answers", list, where_q)
                    if len(answers) != 1:
                        raise XScaleError(f"{where_q}: LAReQA needs exactly one answer")
                    start = _get(answers[0], "answer_start", int, f"{where_q}.answers[0]")
                    hit = next((k for k, (s, e) in enumerate(breaks) if s <= start < e), None)
                    if hit is None:
                        skipped += 1
                        by_lang[lang] += 1
                        continue
                    xid = _get(qa, "id", str, where_q)
                    questions.append((xid, lang, _get(qa, "question", str, where_q)))
                    answer_of.setdefault(xid, set()).add(first + hit)
    relevant = [frozenset(answer_of[xid]) for xid, _, _ in questions]
    return AnswerPool(questions, candidates, relevant, skipped, by_lang)


# --------------------------------------------------------------------------- Mewsli-X
#
# Mewsli-X (XTREME-R), the files of its release as XTREME's download script places them
# (``<root>/xtreme/mewslix/``), one JSON object per line:
#   candidate_set_entities.jsonl      an entity: entity_id, title, description (+ sentence_spans)
#   wikipedia_pairs-{train,dev}.jsonl {"contextual_mention": {"context": C, "mention": M},
#                                      "entity": E}   English Wikipedia, for fine-tuning
#   wikinews_mentions-{dev,test}.jsonl {"context": C, "mentions": [M, ...]}   WikiNews, 11 langs
# C = {"text", "language", "sentence_spans": [[start, end], ...], ...};
# M = {"example_id", "entity_id", "mention_span": {"text", "start", "end"}}.
# A mention is encoded with the sentence that holds it (``window_size=0`` in Mewsli-X's
# schema.truncate), an entity with its title and description.


@dataclass
class EntityMention:
    example_id: str
    lang: str
    mention: str
    sentence: str  # the sentence of the context holding the mention's start
    entity_id: str


def _mention_sentence(context: dict, start: int, where: str) -> str:
    text = _get(context, "text", str, where)
    spans = context.get("sentence_spans") or [[0, len(text)]]
    for span in spans:
        if not (
            isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)
        ):
            raise XScaleError(f"{where}.sentence_spans: expected [start, end] pairs, got {span!r}")
        if span[0] <= start < span[1]:
            return text[span[0] : span[1]]
    raise XScaleError(f"{where}: mention start {start} lies in no sentence span")


def _mention(context: dict, mention: dict, where: str) -> EntityMention:
    span = _get(mention, "mention_span", dict, where)
    start = _get(span, "start", int, f"{where}.mention_span")
    text = _get(span, "text", str, f"{where}.mention_span")
    full = _get(context, "text", str, where)
    if not text:
        raise XScaleError(f"{where}: empty mention text")
    if not full:
        raise XScaleError(
            f"{where}: the context has no text (Mewsli-X's release leaves the WikiNews text out;"
            " run its get-mewsli-x.sh, as XTREME's download script does, to fill it in)"
        )
    if full[start : start + len(text)] != text:
        raise XScaleError(
            f"{where}: mention {text!r} is not at {start} of the context text (is the WikiNews"
            " text filled in? run Mewsli-X's get-mewsli-x.sh, as XTREME's download script does)"
        )
    sentence = _mention_sentence(context, start, where)
    return EntityMention(
        _get(mention, "example_id", str, where),
        _get(context, "language", str, where),
        text,
        sentence,
        _get(mention, "entity_id", str, where),
    )


def read_mewslix_entities(path: str | Path) -> list[tuple[str, str, str]]:
    """The candidate set: (entity_id, title, description) per line, ids unique."""
    out, seen = [], set()
    for n, row in _jsonl(path):
        where = f"{path}:{n}"
        eid = _get(row, "entity_id", str, where)
        if eid in seen:
            raise XScaleError(f"{where}: entity {eid} is listed twice")
        seen.add(eid)
        out.append((eid, _get(row, "title", str, where), _get(row, "description", str, where)))
    return out


def read_mewslix_pairs(path: str | Path) -> list[Example]:
    """Wikipedia (mention, entity) pairs: dual_encoder examples with ``query`` [mention,
    sentence], ``candidate`` [title, description] and ``key`` the entity id."""
    examples = []
    for n, row in _jsonl(path):
        where = f"{path}:{n}"
        cm = _get(row, "contextual_mention", dict, where)
        m = _mention(
            _get(cm, "context", dict, f"{where}.contextual_mention"),
            _get(cm, "mention", dict, f"{where}.contextual_mention"),
            f"{where}.contextual_mention",
        )
        entity = _get(row, "entity", dict, where)
        fields = {
            "query": [m.mention, m.sentence],
            "candidate": [
                _get(entity, "title", str, f"{where}.entity"),
                _get(entity, "description", str, f"{where}.entity"),
            ],
            "key": _get(entity, "entity_id", str, f"{where}.entity"),
        }
        examples.append(Example(m.example_id, "en", fields))
    return examples


def read_mewslix_mentions(path: str | Path) -> list[EntityMention]:
    """WikiNews mentions of every language, in file order."""
    out = []
    for n, row in _jsonl(path):
        where = f"{path}:{n}"
        context = _get(row, "context", dict, where)
        for i, mention in enumerate(_get(row, "mentions", list, where)):
            if not isinstance(mention, dict):
                raise XScaleError(f"{where}.mentions[{i}]: expected an object")
            out.append(_mention(context, mention, f"{where}.mentions[{i}]"))
    return out
