"""The size table: exact parameter counts, tiny ladder span, lookups, configs, messages."""

import pytest
import torch
from transformers import (
    XLMRobertaConfig,
    XLMRobertaModel,
    XLMRobertaXLConfig,
    XLMRobertaXLModel,
)

from xscale.catalog.recipes import format_table
from xscale.catalog.sizes import (
    SIZES,
    count_params,
    get_size,
    hub_unavailable_message,
    model_config,
)
from xscale.errors import XScaleError


def build_on_meta(size, vocab_size=None):
    cls = XLMRobertaXLModel if size.arch == "xlm-roberta-xl" else XLMRobertaModel
    with torch.device("meta"):
        return cls(model_config(size, vocab_size=vocab_size))


@pytest.mark.parametrize("name", list(SIZES))
def test_params_equal_the_real_module(name):
    size = get_size(name)
    model = build_on_meta(size)
    assert size.params == count_params(size) == sum(p.numel() for p in model.parameters())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    assert size.largest_layer_params == largest


def test_vocab_override_is_counted():
    size = get_size("tiny-s")
    model = build_on_meta(size, vocab_size=700)
    assert count_params(size, vocab_size=700) == sum(p.numel() for p in model.parameters())
    assert count_params(size, vocab_size=700) < size.params


@pytest.mark.parametrize(
    "name,published",
    [("xlmr-base", 270e6), ("xlmr-large", 550e6), ("xlmr-xl", 3.5e9), ("xlmr-xxl", 10.7e9)],
)
def test_real_sizes_match_published_counts(name, published):
    size = get_size(name)
    assert abs(size.params - published) / published < 0.05
    assert size.hub_id and not size.tiny and size.gpus_per_worker >= 1


def test_tiny_ladder():
    tiny = sorted((s for s in SIZES.values() if s.tiny), key=lambda s: s.params)
    assert len(tiny) >= 3
    assert tiny[-1].params / tiny[0].params >= 16
    for s in tiny:
        assert s.hub_id is None and s.vocab_size == 1000 and s.max_positions == 130
        assert (s.cpus_per_worker, s.gpus_per_worker, s.num_workers) == (1, 0, 1)
    assert tiny[1].params < 1_000_000  # the two smallest train in seconds on 2 cores


def test_ladder_is_ordered_by_cost():
    reals = [get_size(n) for n in ("xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl")]
    costs = [s.relative_cost for s in reals]
    assert costs == sorted(costs) and costs[0] == pytest.approx(1.0)
    assert [s.total_gpus for s in reals] == [1, 1, 4, 8]


def test_unknown_size_names_it_and_lists_known():
    with pytest.raises(XScaleError) as exc:
        get_size("xlmr-huge")
    msg = str(exc.value)
    assert "'xlmr-huge'" in msg and "xlmr-base" in msg and "tiny-xs" in msg
    assert "\n" not in msg


def test_model_config_classes_and_special_ids():
    tiny = model_config("tiny-xs")
    assert type(tiny) is XLMRobertaConfig
    assert (tiny.pad_token_id, tiny.bos_token_id, tiny.eos_token_id) == (1, 0, 2)
    assert (tiny.vocab_size, tiny.max_position_embeddings, tiny.type_vocab_size) == (1000, 130, 1)
    assert type(model_config("xlmr-xl")) is XLMRobertaXLConfig
    assert model_config("tiny-xs", vocab_size=321).vocab_size == 321


def test_tiny_model_runs_forward():
    size = get_size("tiny-xs")
    model = XLMRobertaModel(model_config(size)).eval()
    ids = torch.tensor([[0, 5, 6, 7, 2, 1]])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=(ids != 1).long())
    assert out.last_hidden_state.shape == (1, 6, size.hidden_size)
    assert sum(p.numel() for p in model.parameters()) == size.params


def test_format_table_lists_every_size():
    table = format_table()
    for name, size in SIZES.items():
        assert name in table and size.deepspeed_config in table
    assert "(tiny, offline)" in table and "FacebookAI/xlm-roberta-base" in table
    assert "ZeRO-3" in table and "offload" in table


def test_hub_unavailable_message_is_one_actionable_line():
    err = OSError("We couldn't connect to 'https://huggingface.co'\nto load this file")
    for what in ("xlmr-large", get_size("xlmr-large"), "FacebookAI/xlm-roberta-large"):
        msg = hub_unavailable_message(what, err)
        assert "\n" not in msg
        assert "FacebookAI/xlm-roberta-large" in msg
        assert "--model-path" in msg and "HF_HOME" in msg and "download" in msg
