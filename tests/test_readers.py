"""Readers on the real XTREME / intermediate files (skipped when ../shared/data is absent) and
on small malformed files written to tmp_path."""

import json
from pathlib import Path

import pytest

from xscale.data.readers import (
    TATOEBA_CODES,
    read_bucc,
    read_copa,
    read_cosmosqa,
    read_csqa,
    read_hellaswag,
    read_squad,
    read_tagging,
    read_tatoeba,
    tatoeba_code,
    tatoeba_lang,
)
from xscale.errors import XScaleError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XTREME = DATA / "xtreme"
UPOS = {
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
}  # fmt: skip

real = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real benchmark data not found at {DATA} (../shared/data)"
)


# ----------------------------------------------------------------------------- real files


@real
@pytest.mark.shared_data
@pytest.mark.parametrize("lang", ["en", "de", "es"])
def test_xquad_real(lang):
    examples = read_squad(XTREME / "xquad" / f"xquad.{lang}.json", lang)
    assert len(examples) == 1190
    for ex in examples:
        assert ex.lang == lang and ex.guid == ex.fields["id"]
        assert ex.fields["answers"] and not ex.fields["is_impossible"]
        for ans in ex.fields["answers"]:
            start = ans["answer_start"]
            assert ex.fields["context"][start : start + len(ans["text"])] == ans["text"]


@real
@pytest.mark.shared_data
def test_mlqa_real():
    path = XTREME / "mlqa" / "MLQA_V1" / "dev" / "dev-context-de-question-de.json"
    examples = read_squad(path, "de")
    assert 400 < len(examples) < 600
    for ex in examples:
        ans = ex.fields["answers"][0]
        start = ans["answer_start"]
        assert ex.fields["context"][start : start + len(ans["text"])] == ans["text"]


@real
@pytest.mark.shared_data
@pytest.mark.parametrize("lang, n", [("en", 440), ("fi", 782)])
def test_tydiqa_real(lang, n):
    folder = XTREME / "tydiqa" / "tydiqa-goldp-v1.1-dev"
    examples = read_squad(folder / f"tydiqa.goldp.{lang}.dev.json", lang)
    assert len(examples) == n
    assert len({ex.guid for ex in examples}) == n


@real
@pytest.mark.shared_data
def test_udpos_real():
    examples = read_tagging(XTREME / "udpos" / "dev-en.tsv", "en")
    assert len(examples) == 3974
    assert examples[0].fields["tokens"][:3] == ["From", "the", "AP"]
    for lang in ("en", "fr", "el"):
        tags = set()
        for ex in read_tagging(XTREME / "udpos" / f"dev-{lang}.tsv", lang):
            assert len(ex.fields["tokens"]) == len(ex.fields["tags"]) > 0
            tags.update(ex.fields["tags"])
        assert tags <= UPOS, tags - UPOS


@real
@pytest.mark.shared_data
def test_csqa_real():
    examples = read_csqa(DATA / "intermediate" / "csqa" / "valid.jsonl")
    assert len(examples) == 1221
    assert all(len(ex.fields["choices"]) == 5 for ex in examples)
    assert {ex.fields["label"] for ex in examples} == {0, 1, 2, 3, 4}
    first = examples[0].fields
    assert first["choices"][first["label"]] == "bank"


@real
@pytest.mark.shared_data
def test_cosmosqa_real():
    folder = DATA / "intermediate" / "cosmosqa"
    examples = read_cosmosqa(folder / "valid.jsonl")
    assert len(examples) == 2985
    assert all(len(ex.fields["choices"]) == 4 for ex in examples)
    lst = (folder / "valid-labels.lst").read_text().split("\n")
    assert [ex.fields["label"] for ex in examples] == [int(x) for x in lst if x.strip()]


@real
@pytest.mark.shared_data
def test_tatoeba_real():
    folder = XTREME / "tatoeba" / "v1"
    examples = read_tatoeba(folder, "de")
    assert len(examples) == 1000
    assert all(ex.fields["source"] and ex.fields["target"] for ex in examples)
    codes = {p.name.split(".")[1].split("-")[0] for p in folder.glob("tatoeba.*-eng.*")}
    assert codes and codes <= set(TATOEBA_CODES.values())
    for code in sorted(codes):  # every language: both sides have the same line count
        assert read_tatoeba(folder, tatoeba_lang(code))


@real
@pytest.mark.shared_data
def test_bucc_real():
    corpus = read_bucc(XTREME / "bucc2018", "zh", "dev")
    assert len(corpus.src_ids) == len(corpus.src_texts) == 8624
    assert len(corpus.trg_ids) == len(corpus.trg_texts) == 13589
    assert corpus.gold is not None and len(corpus.gold) == 257
    assert corpus.src_ids[0] == "zh-000000001"
    assert ("zh-000000057", "en-000008530") in corpus.gold


# ----------------------------------------------------------------------------- SQuAD format


def squad_doc(**qa_overrides):
    qa = {"id": "q1", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 3}]}
    qa.update(qa_overrides)
    return {"version": "1.1", "data": [{"paragraphs": [{"context": "In Paris.", "qas": [qa]}]}]}


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return path


def test_squad_ok_and_v2_impossible(tmp_path):
    ex = read_squad(write(tmp_path, "a.json", squad_doc()), "en")[0]
    assert ex.fields == {
        "question": "Where?",
        "context": "In Paris.",
        "answers": [{"text": "Paris", "answer_start": 3}],
        "id": "q1",
        "is_impossible": False,
    }
    v2 = read_squad(write(tmp_path, "b.json", squad_doc(answers=[], is_impossible=True)), "en")
    assert v2[0].fields["is_impossible"] is True and v2[0].fields["answers"] == []


def test_squad_invalid_json_names_line(tmp_path):
    path = write(tmp_path, "bad.json", '{"data": [\n  {"paragraphs": [}\n]}')
    with pytest.raises(XScaleError, match=r"bad\.json:2: invalid JSON"):
        read_squad(path, "en")


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"version": "1.1"}, "no top-level 'data' list"),
        (squad_doc(question=None), r"qas\[0\]: field 'question' must be str"),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, r"paragraphs\[0\]: missing field 'context'"),
        (squad_doc(answers=[{"text": "x", "answer_start": 99}]), "outside context"),
        (squad_doc(answers=[{"text": "x", "answer_start": "3"}]), "must be int"),
    ],
)
def test_squad_malformed(tmp_path, doc, message):
    with pytest.raises(XScaleError, match=message) as err:
        read_squad(write(tmp_path, "m.json", doc), "en")
    assert "m.json" in str(err.value)


def test_squad_duplicate_id(tmp_path):
    doc = squad_doc()
    para = doc["data"][0]["paragraphs"][0]
    para["qas"].append(dict(para["qas"][0]))
    with pytest.raises(XScaleError, match=r"qas\[1\]: duplicate question id 'q1'"):
        read_squad(write(tmp_path, "d.json", doc), "en")


# ----------------------------------------------------------------------------- tagging


def test_tagging_panx_prefix_and_blank_lines(tmp_path):
    text = "de:Paris\tB-LOC\nde:ist\tO\n\n\nde:Hans\tB-PER\r\nde:de:x\tO\n"
    examples = read_tagging(write(tmp_path, "panx.tsv", text), "de")
    assert [ex.fields for ex in examples] == [
        {"tokens": ["Paris", "ist"], "tags": ["B-LOC", "O"]},
        {"tokens": ["Hans", "de:x"], "tags": ["B-PER", "O"]},
    ]
    assert [ex.guid for ex in examples] == ["de-0", "de-1"]


def test_tagging_keeps_unicode_line_separators_inside_tokens(tmp_path):
    examples = read_tagging(write(tmp_path, "u.tsv", "a\u2028b\tX\n"), "en")
    assert examples[0].fields["tokens"] == ["a\u2028b"]


def test_tagging_malformed_names_line(tmp_path):
    path = write(tmp_path, "bad.tsv", "a\tNOUN\nb\tVERB\nc\tX\textra\n")
    with pytest.raises(XScaleError, match=r"bad\.tsv:3: expected 'token<TAB>tag'"):
        read_tagging(path, "en")
    with pytest.raises(XScaleError, match=r"e\.tsv:1: empty token or tag"):
        read_tagging(write(tmp_path, "e.tsv", "a\t\n"), "en")
    with pytest.raises(XScaleError, match="file not found"):
        read_tagging(tmp_path / "missing.tsv", "en")


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("a\tX\n\xe9t\xe9\tY\n".encode("latin-1"))
    with pytest.raises(XScaleError, match=r"latin1\.tsv:2: not valid UTF-8"):
        read_tagging(path, "fr")


# ----------------------------------------------------------------------------- multiple choice


def jsonl(*rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def csqa_row(key="B"):
    choices = [{"label": lab, "text": t} for lab, t in zip("ABC", ["x", "y", "z"])]
    return {"id": "c1", "answerKey": key, "question": {"stem": "Q?", "choices": choices}}


def test_csqa(tmp_path):
    ex = read_csqa(write(tmp_path, "c.jsonl", jsonl(csqa_row())))[0]
    assert ex.fields == {"context": "", "question": "Q?", "choices": ["x", "y", "z"], "label": 1}
    with pytest.raises(XScaleError, match=r"c2\.jsonl:2: answerKey 'E' is not one"):
        read_csqa(write(tmp_path, "c2.jsonl", jsonl(csqa_row(), csqa_row("E"))))
    with pytest.raises(XScaleError, match=r"c3\.jsonl:1: invalid JSON"):
        read_csqa(write(tmp_path, "c3.jsonl", "{not json}\n"))


def cosmos_row(label="2"):
    row = {"id": "r", "context": "C", "question": "Q"}
    row.update({f"answer{j}": f"a{j}" for j in range(4)})
    if label is not None:
        row["label"] = label
    return row


def test_cosmosqa_labels(tmp_path):
    path = write(tmp_path, "valid.jsonl", jsonl(cosmos_row(None), cosmos_row(None)))
    write(tmp_path, "valid-labels.lst", "3\n0\n")
    examples = read_cosmosqa(path)  # labels from the sibling .lst
    assert [ex.fields["label"] for ex in examples] == [3, 0]
    assert examples[0].fields["choices"] == ["a0", "a1", "a2", "a3"]
    own = read_cosmosqa(write(tmp_path, "own.jsonl", jsonl(cosmos_row("1"))))
    assert own[0].fields["label"] == 1


def test_cosmosqa_malformed(tmp_path):
    path = write(tmp_path, "valid.jsonl", jsonl(cosmos_row("2"), cosmos_row("1")))
    write(tmp_path, "valid-labels.lst", "2\n")
    with pytest.raises(XScaleError, match="1 labels but .* has 2 rows"):
        read_cosmosqa(path)
    write(tmp_path, "valid-labels.lst", "2\n3\n")
    with pytest.raises(XScaleError, match=r"valid\.jsonl:2: label '1' disagrees"):
        read_cosmosqa(path)
    write(tmp_path, "valid-labels.lst", "2\n7\n")
    with pytest.raises(XScaleError, match=r"valid-labels\.lst:2: label must be a choice index"):
        read_cosmosqa(path)
    with pytest.raises(XScaleError, match=r"n\.jsonl:1: no label"):
        read_cosmosqa(write(tmp_path, "n.jsonl", jsonl(cosmos_row(None))))


def test_copa(tmp_path):
    row = {"premise": "P.", "choice1": "A.", "choice2": "B.", "question": "effect"}
    path = write(tmp_path, "x.jsonl", jsonl({**row, "label": 1, "idx": 7}))
    ex = read_copa(path, "it")[0]
    assert (ex.guid, ex.lang) == ("it-7", "it")
    assert ex.fields == {"context": "P.", "question": "effect", "choices": ["A.", "B."], "label": 1}
    bad = write(tmp_path, "b.jsonl", jsonl({**row, "label": 0}, {**row, "question": "why"}))
    with pytest.raises(XScaleError, match=r"b\.jsonl:2: question must be 'cause' or 'effect'"):
        read_copa(bad)
    with pytest.raises(XScaleError, match=r"l\.jsonl:1: missing field 'label'"):
        read_copa(write(tmp_path, "l.jsonl", jsonl(row)))
    with pytest.raises(XScaleError, match=r"r\.jsonl:1: label must be a choice index 0\.\.1"):
        read_copa(write(tmp_path, "r.jsonl", jsonl({**row, "label": 2})))


def test_hellaswag(tmp_path):
    row = {"ind": 4, "ctx": "A man", "endings": ["a", "b", "c", "d"], "label": "2"}
    ex = read_hellaswag(write(tmp_path, "h.jsonl", jsonl(row)))[0]
    assert ex.guid == "4"
    assert ex.fields == {"context": "A man", "question": "", "choices": list("abcd"), "label": 2}
    with pytest.raises(XScaleError, match=r"e\.jsonl:1: 'endings' must be a list"):
        read_hellaswag(write(tmp_path, "e.jsonl", jsonl({**row, "endings": ["a", 3]})))


# ----------------------------------------------------------------------------- Tatoeba, BUCC


def test_tatoeba_code_table():
    assert tatoeba_code("de") == "deu" and tatoeba_code("zh") == "cmn"
    assert tatoeba_code("sw") == "swh" and tatoeba_code("fa") == "pes"
    assert all(tatoeba_lang(tatoeba_code(lang)) == lang for lang in TATOEBA_CODES)
    assert len(TATOEBA_CODES) == 37  # XTREME's 36 Tatoeba languages + English
    with pytest.raises(XScaleError, match="no Tatoeba code for language 'xx'"):
        tatoeba_code("xx")
    with pytest.raises(XScaleError, match="unknown Tatoeba code"):
        tatoeba_lang("zzz")


def test_tatoeba_files(tmp_path):
    write(tmp_path, "tatoeba.deu-eng.deu", "Hallo\u2028Welt\nJa.\n")
    write(tmp_path, "tatoeba.deu-eng.eng", "Hello world\nYes.\n")
    examples = read_tatoeba(tmp_path, "de")
    assert [ex.fields for ex in examples] == [
        {"source": "Hallo\u2028Welt", "target": "Hello world"},
        {"source": "Ja.", "target": "Yes."},
    ]
    write(tmp_path, "tatoeba.deu-eng.eng", "Hello world\n")
    with pytest.raises(XScaleError, match="has 2 lines but .* has 1"):
        read_tatoeba(tmp_path, "de")
    with pytest.raises(XScaleError, match="file not found"):
        read_tatoeba(tmp_path, "fr")


def test_bucc_files(tmp_path):
    write(tmp_path, "de-en.dev.de", "de-1\tHallo\nde-2\tJa\n")
    write(tmp_path, "de-en.dev.en", "en-1\tHello\nen-2\tYes\tor no\n")
    write(tmp_path, "de-en.dev.gold", "de-1\ten-1\n")
    corpus = read_bucc(tmp_path, "de")
    assert corpus.src_ids == ["de-1", "de-2"] and corpus.trg_texts == ["Hello", "Yes\tor no"]
    assert corpus.gold == {("de-1", "en-1")}
    write(tmp_path, "de-en.dev.gold", "de-1\ten-1\nde-3\ten-2\n")
    with pytest.raises(XScaleError, match=r"de-en\.dev\.gold:2: id 'de-3' is not in its corpus"):
        read_bucc(tmp_path, "de")
    write(tmp_path, "de-en.dev.de", "de-1\tHallo\nno tab here\n")
    with pytest.raises(XScaleError, match=r"de-en\.dev\.de:2: expected 'id<TAB>sentence'"):
        read_bucc(tmp_path, "de")


def test_bucc_without_gold(tmp_path):
    write(tmp_path, "fr-en.test.fr", "fr-1\tOui\n")
    write(tmp_path, "fr-en.test.en", "en-1\tYes\n")
    corpus = read_bucc(tmp_path, "fr", "test")
    assert corpus.gold is None and corpus.src_texts == ["Oui"]


# ----------------------------------------------------------------------------- LAReQA


def _xquad_r(questions: list[tuple[str, str, int]], context: str, breaks) -> dict:
    qas = [
        {"id": qid, "question": q, "answers": [{"text": "x", "answer_start": start}]}
        for qid, q, start in questions
    ]
    para = {"context": context, "qas": qas, "sentence_breaks": breaks}
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [para]}]}


def test_xquad_r_pool_links_each_question_to_its_answer_in_every_language(tmp_path):
    import json

    from xscale.data.readers import read_xquad_r

    en = "One. Two is here. Three."
    de = "Eins. Zwei ist hier. Drei."
    # q1's answer is in sentence 1 in both languages; q2's start (30) is in no sentence of en
    files = {}
    spans = {"en": [[0, 4], [5, 17], [18, 24]], "de": [[0, 5], [6, 20], [21, 26]]}
    for lang, ctx, starts in (("en", en, (6, 30)), ("de", de, (7, 1))):
        breaks = spans[lang]
        path = tmp_path / f"{lang}.json"
        qs = [("q1", f"{lang} where?", starts[0]), ("q2", f"{lang} what?", starts[1])]
        path.write_text(json.dumps(_xquad_r(qs, ctx, breaks)), encoding="utf-8")
        files[lang] = path
    pool = read_xquad_r(files)
    assert [c[0] for c in pool.candidates] == [
        "en_1_0",
        "en_1_1",
        "en_1_2",
        "de_1_0",
        "de_1_1",
        "de_1_2",
    ]
    assert pool.candidates[1][2] == "Two is here." and pool.candidates[4][2] == "Zwei ist hier."
    assert pool.skipped == 1  # en q2 (start 30 is past the context's sentences)
    assert [(q[0], q[1]) for q in pool.questions] == [("q1", "en"), ("q1", "de"), ("q2", "de")]
    # q1 in either language: the answer sentence in en and in de; q2: de's sentence 0 only
    assert pool.relevant == [frozenset({1, 4}), frozenset({1, 4}), frozenset({3})]


@real
@pytest.mark.shared_data
def test_real_xquad_r_files():
    from xscale.data.readers import read_xquad_r

    langs = ("en", "de", "es", "el", "ru", "hi")
    folder = XTREME / "lareqa" / "xquad-r"
    pool = read_xquad_r({lang: folder / f"{lang}.json" for lang in langs})
    per_lang = {lang: sum(1 for q in pool.questions if q[1] == lang) for lang in langs}
    assert per_lang["en"] == 1190 and sum(per_lang.values()) + pool.skipped == 6 * 1190
    assert sum(1 for c in pool.candidates if c[1] == "en") == 1180  # sentences of 240 paragraphs
    # a question's relevant candidates: its answer sentence in each language it is found in
    sizes = {len(r) for r in pool.relevant}
    assert max(sizes) == 6 and all(
        len({pool.candidates[j][1] for j in r}) == len(r) for r in pool.relevant
    )
    first = pool.questions[0]
    assert first == (
        "56beb4343aeaaa14008c925b",
        "en",
        "How many points did the Panthers defense surrender?",
    )
