"""Bilingual lexicons: MUSE files (and their one-line errors), induction from parallel rows, the
English pivot, and finding a lexicon's words in text with and without spaces."""

from __future__ import annotations

import pytest

from xscale import data as xdata
from xscale.data import FIXTURES
from xscale.errors import XScaleError
from xscale.sweep.perturbations import LexiconSource
from xscale.tasks.lexicon import Lexicon, build_lexicon, induce, read_muse, units
from xscale.tasks.registry import get_task


def test_muse_file_reads_pairs_in_file_order(tmp_path):
    f = tmp_path / "en-de.txt"
    f.write_text("house Haus\nhouse Gebäude\n\ncat\tKatze\nHouse Haus\n", encoding="utf-8")
    assert read_muse(f) == {"house": ["Haus", "Gebäude"], "cat": ["Katze"]}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"house Haus\nthree fields here\n", r"en-de.txt: line 2: expected 'word translation'"),
        (b"house Haus\ncat\n", r"en-de.txt: line 2: .*got 1"),
        (b"house Haus\n\xff\xfe bad\n", r"en-de.txt: line 2: not UTF-8"),
        (b"\n\n", r"en-de.txt: no 'word translation' lines"),
    ],
)
def test_malformed_muse_file_names_file_and_line(tmp_path, content, message):
    f = tmp_path / "en-de.txt"
    f.write_bytes(content)
    with pytest.raises(XScaleError, match=message):
        read_muse(f)


def test_missing_muse_file_is_named(tmp_path):
    with pytest.raises(XScaleError, match=r"fr-de.txt: no such lexicon file \(nor fr-en.txt"):
        build_lexicon([("fr", "de")], str(tmp_path / "{src}-{tgt}.txt"))


def test_muse_pivots_through_english(tmp_path):
    (tmp_path / "fr-en.txt").write_text("maison house\nchat cat\n")
    (tmp_path / "en-de.txt").write_text("house Haus\ncat Katze\n")
    lex = build_lexicon([("fr", "de")], str(tmp_path / "{src}-{tgt}.txt"))
    assert lex.translations("Maison", "fr", "de") == ["Haus"]
    assert lex.keys("fr", "de") == {"maison", "chat"}
    assert not lex.has("de", "fr")


def _pairs(a: str, b: str) -> list[tuple[str, str]]:
    task = get_task("xnli")
    xa = xdata.load_examples(task, "train", a, FIXTURES)
    xb = xdata.load_examples(task, "train", b, FIXTURES)
    return [(x.fields[k], y.fields[k]) for x, y in zip(xa, xb) for k in ("text_a", "text_b")]


def test_induced_lexicon_finds_the_fixture_translations():
    """The fixtures translate word for word from one lexicon per language (make_fixtures.py):
    induction recovers those words as the best translation."""
    en_de = induce(_pairs("en", "de"), "en", "de")
    assert en_de["beds"][0] == "Betten" and en_de["blue"][0] == "blaue"
    assert en_de["watches"][0] == "beobachtet" and en_de["kitchen"][0] == "Küche"
    en_zh = induce(_pairs("en", "zh"), "en", "zh")  # zh: character n-grams, no spaces
    assert en_zh["kitchen"][0] in ("厨房", "厨房里") and en_zh["blue"][0] in ("蓝色", "蓝色的")
    # no further candidate of an unspaced target shares a character with a better one
    for word, ts in en_zh.items():
        for i, t in enumerate(ts):
            assert not any(set(t) & set(u) for u in ts[:i]), (word, ts)


def test_induction_thresholds():
    pairs = [
        ("a cat", "eine Katze"),
        ("the cat", "die Katze"),
        ("a dog", "ein Hund"),
        ("the dog", "der Hund"),
        ("a cat", "eine Katze"),
    ]
    lex = induce(pairs, "en", "de")
    # cat: Katze 2*3/(3+3) = 1.0, eine 2*2/(3+2) = 0.8 (>= 0.6 x 1.0); die co-occurs once
    assert lex["cat"] == ["Katze", "eine"]
    assert lex["dog"] == ["Hund"]  # ein, der: once each, below min_count 2
    assert "the" not in lex  # every co-occurrence once
    # a: eine 2*2/(3+2) = 0.8, Katze 2*2/(3+3) = 0.67 (>= 0.48)
    assert lex["a"] == ["eine", "Katze"]
    strict = induce(pairs, "en", "de", min_dice=0.9)
    assert strict["cat"] == ["Katze"] and "a" not in strict


def test_words_longest_match_without_spaces():
    lex = Lexicon({("zh", "en"): {"星期一": ["Monday"], "星期": ["week"], "梨": ["pears"]}})
    text = "莉娜星期一买了梨。"
    found = lex.words(text, "zh", lex.keys("zh", "en"))
    assert [(text[s:e], k) for s, e, k in found] == [("星期一", "星期一"), ("梨", "梨")]
    assert "星期一" in units(text, "zh") and "莉娜星" in units(text, "zh")


def test_words_with_spaces_skip_punctuation():
    lex = Lexicon({("en", "de"): {"pears": ["Birnen"], "shop": ["Laden"]}})
    text = "Two pears, in the shop."
    found = lex.words(text, "en", lex.keys("en", "de"))
    assert [text[s:e] for s, e, _ in found] == ["pears", "shop"]


def test_lexicon_source_validation():
    with pytest.raises(ValueError, match="must hold"):
        LexiconSource(muse="dicts/en-de.txt")
    with pytest.raises(ValueError, match="no parallel rows"):
        LexiconSource(induce_from=("xquad",))


def test_tatoeba_pairs_pivot_through_english():
    """Tatoeba pairs every language with English only: de -> fr goes de -> en -> fr."""
    from xscale.stage.lexicons import Lexicons

    lex = Lexicons(FIXTURES).get(LexiconSource(induce_from=("tatoeba",)), [("de", "fr")])
    assert sorted(lex.pairs) == [("de", "en"), ("en", "fr")]
    assert lex.translations("drei", "de", "fr") == ["trois"]
    assert lex.translations("Montag", "de", "fr")[0] == "lundi"


@pytest.mark.shared_data
def test_lexicon_induced_from_real_xnli_rows(shared_data):
    """The real XNLI rows (the group split's training bucket, parallel in 15 languages)."""
    from xscale.stage.lexicons import Lexicons

    lex = Lexicons(str(shared_data)).get(LexiconSource(), [("en", "de"), ("en", "zh")])
    for en, de in (("house", "Haus"), ("children", "Kinder"), ("money", "Geld")):
        assert lex.translations(en, "en", "de")[0] == de
    assert lex.translations("money", "en", "zh")[0] == "钱"
    assert len(lex.pairs[("en", "de")]) > 1000
