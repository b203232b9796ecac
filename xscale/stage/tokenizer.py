"""Train a SentencePiece-style Unigram tokenizer for tiny sizes, with XLM-R's special tokens.

The result is an `XLMRobertaTokenizerFast` saved to a directory, so tiny models load it exactly
as real sizes load theirs: `AutoTokenizer.from_pretrained(dir)`. (Never construct
`XLMRobertaTokenizer(vocab_file=...)`: it silently ignores the file and maps every word to <unk>.)
"""

from __future__ import annotations

import json
from pathlib import Path

from xscale.errors import XScaleError

# XLM-R's special tokens, in XLM-R's id order: <s>=0 <pad>=1 </s>=2 <unk>=3; <mask> follows.
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
# Han, kana, hangul syllables, CJK punctuation and full-width forms.
CJK = (
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    r"\uf900-\ufaff\u3000-\u303f\uff00-\uffef]"
)


def canonical(backend):
    """The trained Unigram model with its pieces in a canonical order and their scores rounded.

    The trainer sums scores in a thread-dependent order, so two runs on the same text give the
    same pieces with scores that differ in the last bits, and pieces of equal score in another
    order: other token ids, so another model from the same seed. Rounding the scores and
    ordering the pieces (special tokens first, then by score, then by text) makes a tokenizer a
    function of its text, and a tiny size's pretraining reproducible."""

    from tokenizers import Tokenizer

    state = json.loads(backend.to_str())
    vocab = state["model"]["vocab"]
    special = [p for p in vocab if p[0] in SPECIAL_TOKENS]
    special.sort(key=lambda p: SPECIAL_TOKENS.index(p[0]))
    rest = [[p, round(float(score), 9)] for p, score in vocab if p not in SPECIAL_TOKENS]
    rest.sort(key=lambda p: (-p[1], p[0]))
    # The trainer appends the characters its pieces do not cover at the end, with scores 1e-4
    # apart in the order its threads met them: give that tail a canonical (alphabetical) order.
    start = len(rest) - 1
    while start > 0 and len(rest[start - 1][0]) == 1 and rest[start - 1][1] - rest[start][1] < 5e-4:
        start -= 1
    if len(rest) - start > 1:
        top = rest[start][1]
        tail = sorted(p for p, _ in rest[start:])
        rest[start:] = [[p, round(top - 1e-4 * i, 9)] for i, p in enumerate(tail)]
    state["model"]["vocab"] = [[p, 0.0] for p, _ in special] + rest
    state["model"]["unk_id"] = SPECIAL_TOKENS.index("<unk>")
    return Tokenizer.from_str(json.dumps(state))


def train_unigram_tokenizer(files: list[Path], vocab_size: int, out_dir: Path):
    from tokenizers import Regex, pre_tokenizers, processors
    from tokenizers.implementations import SentencePieceUnigramTokenizer
    from transformers import XLMRobertaTokenizerFast

    chars = set()
    for f in files:
        chars.update(f.read_text(encoding="utf-8"))
    chars -= {"\n", "\r", " "}
    if len(chars) + len(SPECIAL_TOKENS) >= vocab_size:
        raise XScaleError(
            f"tokenizer: the pretraining text has {len(chars)} distinct characters, too many for"
            f" a {vocab_size}-piece vocabulary (every character needs a piece); set"
            f" pretrain.vocab_size to at least {2 * len(chars)}"
        )
    sp = SentencePieceUnigramTokenizer()
    # CJK characters stand alone, as mBERT splits them: without spaces to cut at, the trainer
    # would otherwise learn multi-word chunks ("维克多星期三" = Victor + Wednesday) that no
    # other sentence shares, and a tiny model could not align Chinese with any other language.
    sp._tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CJK), behavior="isolated"),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
        ]
    )
    try:
        sp.train(
            [str(f) for f in files],
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            unk_token="<unk>",
            show_progress=False,
        )
    except Exception as e:  # the trainer refuses a vocab its corpus cannot fill
        raise XScaleError(f"tokenizer training on {len(files)} files failed: {e}") from None
    got = sp.get_vocab_size()
    # The Unigram trainer prunes in steps, so it may stop a little short of the size asked for;
    # the model is built with the vocabulary it got (and its parameters are counted with it).
    if got < 0.9 * vocab_size:
        raise XScaleError(
            f"tokenizer: the pretraining corpus fills only {got} of the {vocab_size} vocabulary"
            " entries asked for; give more text or a smaller pretrain.vocab_size"
        )
    backend = canonical(sp._tokenizer)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok = XLMRobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out_dir))
    return tok
