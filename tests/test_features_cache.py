"""Tokenized features cached per output folder: a hit returns exactly what featurize returns
(numpy fields with their dtype), anything the features depend on changes the entry, and a
format with learned state is never cached."""

from __future__ import annotations

import numpy as np
import pytest

from xscale import data as xdata
from xscale.data import FIXTURES
from xscale.stage import features
from xscale.tasks import get_format
from xscale.tasks.registry import get_task


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from xscale.data import FIXTURES_DIR
    from xscale.stage.tokenizer import train_unigram_tokenizer

    out = tmp_path_factory.mktemp("tok")
    files = sorted((FIXTURES_DIR / "pretrain").glob("*.txt"))
    train_unigram_tokenizer(files, 1000, out)
    return AutoTokenizer.from_pretrained(str(out))


def same(a: list[dict], b: list[dict]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.keys() != y.keys():
            return False
        for k in x:
            if isinstance(x[k], np.ndarray):
                if not (isinstance(y[k], np.ndarray) and x[k].dtype == y[k].dtype):
                    return False
                if not np.array_equal(x[k], y[k]):
                    return False
            elif x[k] != y[k]:
                return False
    return True


@pytest.mark.parametrize(
    "task_name, split, lang",
    [
        ("xnli", "test", "de"),
        ("xquad", "test", "es"),
        ("udpos", "test", "en"),
        ("copa", "train", "en"),
    ],
)
def test_a_hit_returns_what_featurize_returns(task_name, split, lang, tokenizer, tmp_path):
    task = get_task(task_name)
    fmt = get_format(task)
    ex = xdata.load_examples(task, split, lang, FIXTURES, limit=40)
    direct = fmt.featurize(task, ex, tokenizer, 64)
    kw = {"split": split, "lang": lang, "output_dir": tmp_path}
    first = features.featurize(fmt, task, ex, tokenizer, 64, **kw)
    entries = list((tmp_path / features.CACHE_DIR).glob("*.arrow"))
    assert len(entries) == 1 and entries[0].name.startswith(f"{task_name}-{split}-{lang}-")
    calls = []
    real = fmt.featurize
    fmt.featurize = lambda *a: calls.append(a) or real(*a)
    second = features.featurize(fmt, task, ex, tokenizer, 64, **kw)
    assert calls == []  # read from the cache, not tokenized again
    assert same(direct, first) and same(direct, second)


def test_the_key_covers_what_features_depend_on(tokenizer, tmp_path):
    task = get_task("xnli")
    fmt = get_format(task)
    ex = xdata.load_examples(task, "test", "de", FIXTURES, limit=30)
    kw = {"split": "test", "lang": "de", "output_dir": tmp_path}
    features.featurize(fmt, task, ex, tokenizer, 64, **kw)
    features.featurize(fmt, task, ex, tokenizer, 32, **kw)  # max_length
    features.featurize(fmt, task, ex[:20], tokenizer, 64, **kw)  # other examples (a limit)
    changed = [ex[0].__class__(ex[0].guid, ex[0].lang, {**ex[0].fields, "text_a": "x"}), *ex[1:]]
    features.featurize(fmt, task, changed, tokenizer, 64, **kw)  # edited data
    assert len(list((tmp_path / features.CACHE_DIR).glob("*.arrow"))) == 4


def test_a_damaged_entry_is_recomputed(tokenizer, tmp_path):
    task = get_task("xnli")
    fmt = get_format(task)
    ex = xdata.load_examples(task, "test", "fr", FIXTURES, limit=10)
    kw = {"split": "test", "lang": "fr", "output_dir": tmp_path}
    want = features.featurize(fmt, task, ex, tokenizer, 64, **kw)
    (entry,) = (tmp_path / features.CACHE_DIR).glob("*.arrow")
    entry.write_bytes(b"not arrow")
    assert same(features.featurize(fmt, task, ex, tokenizer, 64, **kw), want)
    assert entry.read_bytes()[:6] == b"ARROW1"


def test_open_label_sets_are_not_cached(tokenizer, tmp_path):
    task = get_task("ccg")  # labels learned from the first examples a format object sees
    assert features.cacheable(task) is False
    assert features.cacheable(get_task("udpos")) is True


class _Backend:
    def __init__(self, state: str):
        self.state = state

    def to_str(self) -> str:
        return self.state


class _Tokenizer:
    is_fast = True
    special_tokens_map = {"pad_token": "<pad>"}

    def __init__(self, state: str):
        self.backend_tokenizer = _Backend(state)


def test_each_tokenizer_gets_the_key_of_its_own_state():
    """Tokenizers created and freed one after another (as stages in one trial process) often
    reuse a freed one's id(): each must still be keyed by its own vocabulary."""
    keys = set()
    for i in range(50):
        tok = _Tokenizer(f"vocabulary {i}")
        keys.add(features.tokenizer_key(tok))
        del tok
    assert len(keys) == 50
