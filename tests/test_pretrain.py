"""The tiny sizes' pretraining inputs: the corpus (text files or a parallel task's training
rows), the parallel pairs of the translation-ranking loss, and the tokenizer's treatment of
CJK text. Pure or seconds-long; the end-to-end trials exercise the whole stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xscale import data
from xscale.errors import XScaleError
from xscale.graph.stage import StageSpec
from xscale.stage.corpus import corpus_files, parallel_pairs
from xscale.stage.pretrain import MLMModel
from xscale.sweep.phases import PretrainConfig
from xscale.tasks.padding import pad_batch
from xscale.tasks.registry import get_task


def spec(**hp) -> StageSpec:
    return StageSpec(
        kind="pretrain",
        model="tiny-xs",
        hparams=PretrainConfig(**hp),
        data_root="fixtures",
        deepspeed_config="cpu_zero2.json",
    )


def test_text_corpus_is_the_pretrain_folder():
    files = corpus_files(spec())
    assert [f.name for f in files] == ["en.txt", "de.txt", "es.txt", "fr.txt", "zh.txt"]
    assert all(f.parent == data.FIXTURES_DIR / "pretrain" for f in files)


def test_task_corpus_is_the_training_rows_in_every_language(tmp_path):
    s = spec(corpus="xnli", languages=("en", "de", "zh"))
    assert corpus_files(s) == []  # preflight: checks only
    files = corpus_files(s, tmp_path)
    assert files == [tmp_path / "corpus" / f"{x}.txt" for x in ("en", "de", "zh")]
    en = data.load_examples(get_task("xnli"), "train", "en", "fixtures")
    lines = files[0].read_text(encoding="utf-8").split("\n")[:-1]
    assert lines[:2] == [en[0].fields["text_a"], en[0].fields["text_b"]]
    assert len({len(f.read_text(encoding="utf-8").split("\n")) for f in files}) == 1
    pairs = parallel_pairs(files, None)
    assert len(pairs) == 2 * len(lines)  # each English line with its de and zh translation
    assert not (tmp_path / "corpus" / "test-en.tsv").exists()


@pytest.mark.parametrize(
    "hp, needle",
    [
        ({"corpus": "mnli"}, "not a corpus"),
        ({"corpus": "xnli", "languages": ("en", "ja")}, "no training data for ja"),
    ],
)
def test_bad_corpus_names_the_key(hp, needle):
    with pytest.raises(XScaleError, match="pretrain.corpus") as e:
        corpus_files(spec(**hp))
    assert needle in str(e.value)


def test_alignment_needs_line_parallel_files(tmp_path):
    (tmp_path / "en.txt").write_text("a\nb\nc\n")
    (tmp_path / "de.txt").write_text("x\ny\n")
    with pytest.raises(XScaleError, match="line-parallel.*3 lines in en.txt, 2 lines in de.txt"):
        parallel_pairs([tmp_path / "en.txt", tmp_path / "de.txt"], None)
    (tmp_path / "de.txt").write_text("x\n\nz\n")
    assert parallel_pairs([tmp_path / "en.txt", tmp_path / "de.txt"], None) == [
        ("a", "x"),
        ("c", "z"),
    ]  # an empty line on either side drops its pair, keeping the rest aligned


def _tiny_mlm(vocab=50):
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    cfg = XLMRobertaConfig(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    return XLMRobertaForMaskedLM(cfg)


def test_ranking_loss_adds_to_mlm_and_trains_the_encoder():
    mlm = _tiny_mlm()
    ids, mask = pad_batch([[0, 5, 6, 2], [0, 7, 2], [0, 9, 10, 11, 2]], pad_id=1)
    labels = torch.full_like(ids, -100)
    labels[:, 1] = ids[:, 1]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    plain, _ = MLMModel(mlm, alignment=0.0)({**batch})
    pairs = {"pair_a_ids": ids, "pair_a_mask": mask, "pair_b_ids": ids, "pair_b_mask": mask}
    mlm.eval()  # no dropout: identical inputs give identical embeddings
    with_rank, _ = MLMModel(mlm, alignment=1.0, temperature=0.05)({**batch, **pairs})
    only_mlm, _ = MLMModel(mlm, alignment=0.0)({**batch, **pairs})
    ranking = (with_rank - only_mlm).item()
    assert ranking >= 0
    # a pair of identical sentences is ranked first: its loss is below chance, log(3)
    assert ranking < torch.log(torch.tensor(3.0)).item()
    mlm.zero_grad()
    with_rank.backward()
    assert mlm.roberta.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert plain.item() > 0


def test_tokenizer_isolates_cjk_characters(tmp_path):
    from xscale.stage.tokenizer import train_unigram_tokenizer

    files = [data.FIXTURES_DIR / "pretrain" / f"{x}.txt" for x in ("en", "de", "zh")]
    tok = train_unigram_tokenizer(files, 1000, tmp_path / "tok")
    pieces = tok.tokenize("维克多星期三在市场上叫醒了艾玛。")
    assert all(len(p.strip("▁")) <= 1 for p in pieces), pieces
    ids = tok("维克多 Victor")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "维克多 Victor"


def test_tokenizer_refuses_a_vocabulary_smaller_than_the_alphabet(tmp_path):
    from xscale.stage.tokenizer import train_unigram_tokenizer

    f = tmp_path / "zh.txt"
    f.write_text("".join(chr(0x4E00 + i) for i in range(300)) + "\n", encoding="utf-8")
    with pytest.raises(XScaleError, match="300 distinct characters.*pretrain.vocab_size"):
        train_unigram_tokenizer([f], 200, tmp_path / "tok")


def test_default_vocab_is_the_size_tables(tmp_path):
    assert PretrainConfig().vocab_size is None
    assert Path(data.FIXTURES_DIR / "pretrain" / "en.txt").is_file()


def test_masked_only_lm_head_gives_the_full_heads_loss():
    mlm = _tiny_mlm().eval()
    ids, mask = pad_batch([[0, 5, 6, 7, 2], [0, 8, 2]], pad_id=1)
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[0, 3], labels[1, 1] = 6, 7, 8
    full = mlm(input_ids=ids, attention_mask=mask, labels=labels).loss
    ours, logits = MLMModel(mlm)({"input_ids": ids, "attention_mask": mask, "labels": labels})
    assert ours.item() == pytest.approx(full.item(), rel=1e-6)
    assert logits.shape == (3, 50)  # masked positions only
    nothing = torch.full_like(ids, -100)
    loss, _ = MLMModel(mlm)({"input_ids": ids, "attention_mask": mask, "labels": nothing})
    assert loss.item() == 0.0


def test_tokenizer_is_a_function_of_its_text(tmp_path):
    """The Unigram trainer's thread-dependent score sums and tail order are made canonical, so
    two trainings on the same text write the same tokenizer (and tiny pretraining repeats)."""
    from xscale.stage.tokenizer import SPECIAL_TOKENS, train_unigram_tokenizer

    files = [data.FIXTURES_DIR / "pretrain" / f"{x}.txt" for x in ("en", "de", "es", "fr", "zh")]
    a = train_unigram_tokenizer(files, 1000, tmp_path / "a")
    b = train_unigram_tokenizer(files, 1000, tmp_path / "b")
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (
        tmp_path / "b" / "tokenizer.json"
    ).read_bytes()
    assert a.convert_tokens_to_ids(SPECIAL_TOKENS) == [0, 1, 2, 3, 4]  # XLM-R's ids
    assert len(a) == len(b) == 1000
