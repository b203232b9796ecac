"""The real xlmr-base architecture (random weights, a local model_path) trains 2 steps through
the stage path (`run_stage`: DeepSpeed engine, training, export, evaluation, result) at world 2
on CPU, under ZeRO-2 and under ZeRO-3 (partitioned build, consolidated export)."""

from __future__ import annotations

import json

import pytest
import yaml
from real_arch import random_model_dir, run_world

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

STAGE = """
import json
from pathlib import Path
from xscale.graph.expand import expand
from xscale.stage.runner import run_stage
from xscale.sweep.schema import load_sweep
from xscale.tracking.client import TrackingInfo
cfg = load_sweep({sweep!r})
(group,) = expand(cfg).groups.values()
spec = group.stage({{}}, None)
out = Path(cfg.output_path)
result = run_stage(spec, out, TrackingInfo("sqlite:///" + str(out / "mlflow.db"), cfg.name))
print(json.dumps({{"key": spec.key, "zero_stage": result.zero_stage, "steps": result.steps}}))
"""


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return random_model_dir("xlmr-base", tmp_path_factory.mktemp("xlmr-base"))


@pytest.mark.parametrize("recipe,stage", [("zero2_bf16", 2), ("zero3_bf16", 3)])
def test_real_base_trains_two_steps_at_world_2(tmp_path, base_dir, recipe, stage):
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "out"
    sweep = {
        "name": f"real-{stage}",
        "output_dir": str(out),
        "models": ["xlmr-base"],
        "model_paths": {"xlmr-base": str(base_dir)},
        "intermediate_tasks": ["none"],
        "target_tasks": ["xnli"],
        "eval_languages": {"xnli": ["en", "de"]},
        "data": {"root": "fixtures"},
        "target": {"max_steps": 2, "batch_size": 4, "max_length": 32, "max_eval_examples": 8},
        "resources": {
            "xlmr-base": {"gpus": 0, "cpus": 1, "workers": 2, "deepspeed_config": recipe}
        },
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    ranks = run_world(STAGE.format(sweep=str(path)), world=2, timeout=900)
    assert [r["zero_stage"] for r in ranks] == [stage, stage]  # not silently ZeRO-0
    assert all(r["steps"] == 2 for r in ranks)
    folder = out / "stages" / ranks[0]["key"]
    assert (folder / "COMPLETE").is_file()
    attempt = json.loads((folder / "attempts.jsonl").read_text().splitlines()[-1])
    assert attempt["world"] == 2
    result = json.loads((folder / "result.json").read_text())
    assert 0 <= result["metrics"]["xnli.de.accuracy"] <= 100
    # the export is the whole trained encoder (ZeRO-3: gathered from the partitions)
    before = load_file(str(base_dir / "model.safetensors"))
    after = load_file(str(folder / "model" / "model.safetensors"))
    assert before.keys() == after.keys()
    assert all(before[k].shape == after[k].shape for k in before)
    name = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(before[name], after[name].to(before[name].dtype))  # it trained
