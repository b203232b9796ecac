"""The one table of named model sizes: real XLM-R checkpoints and tiny offline ones.

In the style of litgpt's `config.py`: every size is one `ModelSize` row in `SIZES`; look one up
with `get_size(name)` (an unknown name raises `XScaleError` listing the known ones). Each row says
how to build the encoder (`model_config`), how many parameters it has (`params`, computed exactly
from the architecture by `count_params` so it cannot drift from the model), and what one stage of
it asks from the cluster (DeepSpeed recipe in `deepspeed_configs/`, CPUs/GPUs per worker, workers).

Resource choices (per stage = per Ray Tune trial):
- tiny-*: 1 CPU, no GPU, 1 worker, fp32 ZeRO-2 (`cpu_zero2.json`), so two trials share 2 cores.
- xlmr-base / xlmr-large: 1 GPU, bf16 ZeRO-2; the model states fit one 40 GB GPU easily
  (large: ~10.4 GiB by DeepSpeed's estimate), so sharding across GPUs would only add communication.
- xlmr-xl (3.5B): 4 GPUs, bf16 ZeRO-3 (~17 GiB model states per GPU, leaves room for activations).
- xlmr-xxl (10.7B): 8 GPUs, bf16 ZeRO-3 with optimizer and parameters offloaded to CPU memory, so
  it also fits 8x40 GB GPUs (without offload ~26 GiB of model states per GPU); the workers get
  more CPUs because the optimizer step runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xscale.errors import XScaleError

Arch = Literal["xlm-roberta", "xlm-roberta-xl"]

# XLM-R special token ids (fairseq dictionary order): <s>=0, <pad>=1, </s>=2, <unk>=3.
BOS_ID, PAD_ID, EOS_ID = 0, 1, 2
TYPE_VOCAB_SIZE = 1
TINY_VOCAB_SIZE = 1000
TINY_MAX_POSITIONS = 130  # 128 tokens + the 2 position ids RoBERTa reserves (padding_idx + 1)


@dataclass(frozen=True)
class ModelSize:
    """One named model size. `params` is filled in from the architecture (see `count_params`)."""

    name: str
    hub_id: str | None  # None for tiny sizes (built from `model_config`, pretrained by xscale)
    arch: Arch
    num_layers: int
    hidden_size: int
    num_heads: int
    ffn_size: int
    vocab_size: int
    max_positions: int
    published: str  # the parameter count as papers/model cards state it, e.g. "270M"
    deepspeed_config: str  # file name in deepspeed_configs/
    cpus_per_worker: int
    gpus_per_worker: int
    num_workers: int
    # micro batch per worker (the rest of a worker's share of the global batch is gradient
    # accumulation); None: the whole share in one micro batch (tiny sizes)
    micro_batch_size: int | None
    tiny: bool = False
    params: int = 0  # exact total encoder parameters incl. embeddings and pooler

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"{self.name}: hidden_size not divisible by num_heads")
        object.__setattr__(self, "params", count_params(self))

    @property
    def embedding_params(self) -> int:
        return (self.vocab_size + self.max_positions + TYPE_VOCAB_SIZE) * self.hidden_size

    @property
    def non_embedding_params(self) -> int:
        return self.params - self.embedding_params

    @property
    def largest_layer_params(self) -> int:
        """Parameters of the biggest single module (the word embedding), as DeepSpeed counts it."""
        h, f = self.hidden_size, self.ffn_size
        return max(self.vocab_size * h, h * f + f, h * h + h)

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_worker * self.num_workers

    @property
    def relative_cost(self) -> float:
        """Training compute per token relative to xlmr-base (~6 x non-embedding params)."""
        return self.non_embedding_params / _BASE_NON_EMBEDDING


def count_params(size: ModelSize, vocab_size: int | None = None) -> int:
    """Exact parameter count of XLMRobertaModel / XLMRobertaXLModel (with pooler) for `size`.

    Both architectures have the same count: XLM-R has a LayerNorm after the embeddings, XL a final
    LayerNorm after the encoder (pre-LN); everything else has the same shapes.
    """
    h, f, n = size.hidden_size, size.ffn_size, size.num_layers
    v = size.vocab_size if vocab_size is None else vocab_size
    embeddings = (v + size.max_positions + TYPE_VOCAB_SIZE) * h
    extra_norm = 2 * h  # embeddings.LayerNorm (xlm-roberta) or encoder.LayerNorm (xlm-roberta-xl)
    attention = 4 * (h * h + h) + 2 * h  # q, k, v, out projections + LayerNorm
    ffn = (h * f + f) + (f * h + h) + 2 * h  # up, down + LayerNorm
    pooler = h * h + h
    return embeddings + extra_norm + n * (attention + ffn) + pooler


def _tiny(name: str, layers: int, hidden: int, heads: int) -> ModelSize:
    return ModelSize(
        name=name,
        hub_id=None,
        arch="xlm-roberta",
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        ffn_size=4 * hidden,
        vocab_size=TINY_VOCAB_SIZE,
        max_positions=TINY_MAX_POSITIONS,
        published="-",
        deepspeed_config="cpu_zero2.json",
        cpus_per_worker=1,
        gpus_per_worker=0,
        num_workers=1,
        micro_batch_size=None,
        tiny=True,
    )


_BASE_NON_EMBEDDING = 1  # replaced below once xlmr-base exists

_ROWS: list[ModelSize] = [
    _tiny("tiny-xs", layers=2, hidden=32, heads=2),
    _tiny("tiny-s", layers=4, hidden=64, heads=4),
    _tiny("tiny-m", layers=4, hidden=128, heads=4),
    _tiny("tiny-l", layers=6, hidden=256, heads=8),
    ModelSize(
        name="xlmr-base",
        hub_id="FacebookAI/xlm-roberta-base",
        arch="xlm-roberta",
        num_layers=12,
        hidden_size=768,
        num_heads=12,
        ffn_size=3072,
        vocab_size=250002,
        max_positions=514,
        published="270M",
        deepspeed_config="zero2_bf16.json",
        cpus_per_worker=4,
        gpus_per_worker=1,
        num_workers=1,
        micro_batch_size=32,
    ),
    ModelSize(
        name="xlmr-large",
        hub_id="FacebookAI/xlm-roberta-large",
        arch="xlm-roberta",
        num_layers=24,
        hidden_size=1024,
        num_heads=16,
        ffn_size=4096,
        vocab_size=250002,
        max_positions=514,
        published="550M",
        deepspeed_config="zero2_bf16.json",
        cpus_per_worker=4,
        gpus_per_worker=1,
        num_workers=1,
        micro_batch_size=16,
    ),
    ModelSize(
        name="xlmr-xl",
        hub_id="facebook/xlm-roberta-xl",
        arch="xlm-roberta-xl",
        num_layers=36,
        hidden_size=2560,
        num_heads=32,
        ffn_size=10240,
        vocab_size=250880,
        max_positions=514,
        published="3.5B",
        deepspeed_config="zero3_bf16.json",
        cpus_per_worker=4,
        gpus_per_worker=1,
        num_workers=4,
        micro_batch_size=8,
    ),
    ModelSize(
        name="xlmr-xxl",
        hub_id="facebook/xlm-roberta-xxl",
        arch="xlm-roberta-xl",
        num_layers=48,
        hidden_size=4096,
        num_heads=32,
        ffn_size=16384,
        vocab_size=250880,
        max_positions=514,
        published="10.7B",
        deepspeed_config="zero3_offload_bf16.json",
        cpus_per_worker=8,
        gpus_per_worker=1,
        num_workers=8,
        micro_batch_size=4,
    ),
]

SIZES: dict[str, ModelSize] = {s.name: s for s in _ROWS}
_BASE_NON_EMBEDDING = SIZES["xlmr-base"].non_embedding_params


def get_size(name: str) -> ModelSize:
    """The size called `name`; an unknown name raises XScaleError listing the known ones."""
    try:
        return SIZES[name]
    except (KeyError, TypeError):
        known = ", ".join(SIZES)
        raise XScaleError(f"unknown model size {name!r}; known sizes: {known}") from None


def model_config(size: ModelSize | str, vocab_size: int | None = None):
    """A transformers config for `size` (XLMRobertaConfig or XLMRobertaXLConfig), offline.

    `vocab_size` overrides the table's (a tiny tokenizer trained on a small corpus may have fewer
    pieces than `TINY_VOCAB_SIZE`).
    """
    from transformers import XLMRobertaConfig, XLMRobertaXLConfig

    if isinstance(size, str):
        size = get_size(size)
    cls = XLMRobertaXLConfig if size.arch == "xlm-roberta-xl" else XLMRobertaConfig
    return cls(
        vocab_size=size.vocab_size if vocab_size is None else vocab_size,
        hidden_size=size.hidden_size,
        num_hidden_layers=size.num_layers,
        num_attention_heads=size.num_heads,
        intermediate_size=size.ffn_size,
        max_position_embeddings=size.max_positions,
        type_vocab_size=TYPE_VOCAB_SIZE,
        layer_norm_eps=1e-5,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
    )


def human_params(n: int) -> str:
    """1234567 -> '1.23M'; 3_500_000_000 -> '3.50B'."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def hub_unavailable_message(size_or_id: ModelSize | str, err: BaseException | str) -> str:
    """One line saying that a hub checkpoint could not be loaded and how to provide it offline."""
    if isinstance(size_or_id, ModelSize):
        hub_id, label = size_or_id.hub_id, f" (size {size_or_id.name})"
    elif size_or_id in SIZES:
        hub_id, label = SIZES[size_or_id].hub_id, f" (size {size_or_id})"
    else:
        hub_id, label = size_or_id, ""
    if isinstance(err, BaseException):
        reason = f"{type(err).__name__}: {err}"
    else:
        reason = str(err)
    reason = " ".join(reason.split())
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return (
        f"cannot load {hub_id!r}{label} from the Hugging Face hub ({reason}); either pass a local "
        f"copy with model_path / --model-path, or run `hf download {hub_id}` (older: "
        f"`huggingface-cli download {hub_id}`) on a machine with access and set HF_HOME to that "
        "cache here"
    )
