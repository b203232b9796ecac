"""Evaluation over several ranks: each example is predicted once, by one rank, and every rank
gets all predictions in input order (issue 23: an 8-worker stage evaluated everything 8 times).
Under ZeRO-3 the ranks' forward passes stay in step although their shares differ in size."""

from __future__ import annotations

import pytest
from real_arch import run_world

pytestmark = pytest.mark.slow

PREDICT = """
import json, torch
from torch import nn
from transformers import AutoModel
from xscale.catalog.recipes import load_ds_config
from xscale.catalog.sizes import model_config
from xscale.train.distributed import init_distributed, rank_world, shutdown_distributed
from xscale.train.loop import build_engine, predict
from xscale.train.model import partitioned_init
from xscale.sweep.phases import PhaseConfig

init_distributed()
rank, world = rank_world()
cfg = load_ds_config({recipe!r}, micro_batch_size=2, device="cpu", world_size=world)

class M(nn.Module):
    def __init__(self):
        super().__init__()
        c = model_config("tiny-xs")
        torch.manual_seed(0)
        with partitioned_init(cfg):
            self.encoder = AutoModel.from_config(c, add_pooling_layer=False)
        self.head = nn.Linear(c.hidden_size, 3)
    def forward(self, batch):
        h = self.encoder(input_ids=batch["input_ids"]).last_hidden_state[:, 0]
        return torch.zeros(()), self.head(h)

hp = PhaseConfig(learning_rate=1e-3, batch_size=2 * world, max_steps=1)
engine = build_engine(M(), hp, 1, cfg)
calls = []
engine.module.head.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
g = torch.Generator().manual_seed(3)
feats = [{{"input_ids": torch.randint(5, 900, (int(n),), generator=g).tolist()}}
         for n in torch.randint(3, 20, (33,), generator=g)]

def collate(fs):
    n = max(len(f["input_ids"]) for f in fs)
    ids = [f["input_ids"] + [1] * (n - len(f["input_ids"])) for f in fs]
    return {{"input_ids": torch.tensor(ids)}}

preds = predict(engine, feats, collate, lambda logits, b: logits.argmax(-1).tolist(), 4)
print(json.dumps({{"preds": preds, "forwards": len(calls), "rows": sum(calls)}}))
shutdown_distributed()  # as every stage ends: without it a rank can abort at exit (STACK.md)
"""


@pytest.mark.parametrize("recipe", ["cpu_zero2", "zero3_bf16"])
def test_each_example_is_predicted_once_and_every_rank_has_all(recipe):
    (alone,) = run_world(PREDICT.format(recipe=recipe), world=1)
    ranks = run_world(PREDICT.format(recipe=recipe), world=2)
    assert len(alone["preds"]) == 33 and None not in alone["preds"]
    for r in ranks:
        assert r["preds"] == alone["preds"]  # the same model: the same predictions, in order
        assert r["forwards"] == 5  # ceil(ceil(33 / 2) / 4): in step, though shares are 17 and 16
    # each example once; the rank with 16 runs one repeat in its fifth pass, dropped
    assert alone["rows"] == 33 and sum(r["rows"] for r in ranks) == 33 + 1
