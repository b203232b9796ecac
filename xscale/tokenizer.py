"""Train a SentencePiece-style Unigram tokenizer for tiny sizes, with XLM-R's special tokens.

The result is an `XLMRobertaTokenizerFast` saved to a directory, so tiny models load it exactly
as real sizes load theirs: `AutoTokenizer.from_pretrained(dir)`. (Never construct
`XLMRobertaTokenizer(vocab_file=...)`: it silently ignores the file and maps every word to <unk>.)
"""

from __future__ import annotations

from pathlib import Path

from xscale.errors import XScaleError

# XLM-R's special tokens, in XLM-R's id order: <s>=0 <pad>=1 </s>=2 <unk>=3; <mask> follows.
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_unigram_tokenizer(files: list[Path], vocab_size: int, out_dir: Path):
    from tokenizers import processors
    from tokenizers.implementations import SentencePieceUnigramTokenizer
    from transformers import XLMRobertaTokenizerFast

    sp = SentencePieceUnigramTokenizer()
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
    if got != vocab_size:
        raise XScaleError(
            f"tokenizer: the pretraining corpus fills only {got} of the {vocab_size} vocabulary"
            " entries the size asks for; give more text or a smaller vocab_size"
        )
    backend = sp._tokenizer
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
