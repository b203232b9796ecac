"""The plan a cluster operator reads (issue 23): activations as torch keeps them, model states
as DeepSpeed estimates them for the loading xscale does, fit per GPU type, the cheapest recipe
that fits, GPU-hours, disk; and every real size's recipe valid for DeepSpeed at its world size."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from xscale.catalog.cluster import (
    GPU,
    GPUS,
    Recipe,
    Work,
    activation_bytes,
    comm_buffer_bytes,
    estimate,
    micro_and_accumulation,
    suggest,
)
from xscale.catalog.recipes import read_config
from xscale.catalog.sizes import get_size, model_config
from xscale.graph.plan import shipped_gpu_recipes

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
GIB = 2**30


def _saved_bytes(size: str, batch: int, seq: int, checkpointing: bool) -> int:
    """Bytes autograd keeps for backward in one forward of `size` (bf16, train mode, eager
    attention): every saved tensor's storage, once, parameters left out."""
    from transformers import AutoModel

    cfg = model_config(size)
    torch.manual_seed(0)
    model = AutoModel.from_config(cfg, add_pooling_layer=False, attn_implementation="eager")
    model = model.to(torch.bfloat16).train()
    if checkpointing:
        from xscale.train.model import recompute_activations

        recompute_activations(model)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0), st.nbytes())
        return t

    ids = torch.randint(5, 900, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    return sum(seen.values())


@pytest.mark.parametrize(
    "size,batch,seq", [("tiny-s", 4, 64), ("tiny-m", 2, 128), ("xlmr-base", 2, 64),
                       ("xlmr-base", 1, 256)],
)  # fmt: skip
def test_activation_formula_matches_what_torch_saves(size, batch, seq):
    measured = _saved_bytes(size, batch, seq, checkpointing=False)
    formula = activation_bytes(get_size(size), batch, seq, False, scores_kept=True)
    assert formula == pytest.approx(measured, rel=0.05), (formula, measured)


def test_checkpointing_keeps_each_layers_input():
    """What stays between forward and backward with recomputation: each layer's input (the one
    layer recomputed at a time in backward is the formula's other term)."""
    size = get_size("xlmr-base")
    measured = _saved_bytes("xlmr-base", 2, 128, checkpointing=True)
    s, b, h = 128, 2, size.hidden_size
    kept = size.num_layers * 2 * s * b * h + 6 * s * b * h
    assert kept == pytest.approx(measured, rel=0.1), (kept, measured)
    full = activation_bytes(size, b, s, False)
    assert activation_bytes(size, b, s, True) < full / 3


def test_buffers_follow_the_recipe():
    _, zero2 = read_config("zero2_bf16")  # 2e8 + 2e8 elements, overlap_comm: 4.5x, 2 bytes
    assert comm_buffer_bytes(zero2) == int(4e8 * 2 * 4.5)
    _, cpu = read_config("cpu_zero2")  # 5e7 + 5e7, no overlap
    assert comm_buffer_bytes(cpu) == int(1e8 * 2)


def _recipe(name, workers=1, micro=8, ckpt=False, placement="pack"):
    _, cfg = read_config(name)
    return Recipe(name, cfg, workers, 1, placement, micro, ckpt)


@pytest.mark.parametrize(
    "size,recipe,workers", [("xlmr-xl", "zero3_bf16", 4), ("xlmr-xxl", "zero3_offload_bf16", 8)]
)
def test_cpu_per_node_is_deepspeeds_estimate_for_partitioned_loading(size, recipe, workers):
    """ZeRO-3 stages load partitioned (tests/test_partitioned_load.py), so the figure is
    DeepSpeed's zero_init=True estimate (not the 77.84 / 478.90 GiB of whole copies)."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    s = get_size(size)
    r = _recipe(recipe, workers=workers, micro=1)
    e = estimate(Work(s, 32, 256, 10), r, GPUS["a100-80gb"])
    offload = r.offload != "none"
    cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
        s.params, s.largest_layer_params, workers, 1, cpu_offload=offload,
        cpu_offload_params=r.offload == "optimizer+param", zero_init=True,
    )  # fmt: skip
    assert e.cpu_gib_per_node == pytest.approx(cpu / GIB, rel=1e-6)
    assert e.states_gib == pytest.approx(gpu / GIB, rel=1e-6)


def test_gpu_hours_are_six_n_d_over_achieved_flops():
    s = get_size("xlmr-large")
    work = Work(s, 32, 128, 1000)
    gpu = GPUS["h100-80gb"]
    e = estimate(work, _recipe("zero2_bf16", micro=16), gpu, mfu=0.5)
    flops = 6 * s.non_embedding_params * 1000 * 32 * 128
    assert e.gpu_hours == pytest.approx(flops / (989e12 * 0.5) / 3600)
    ckpt = estimate(work, _recipe("zero2_bf16", micro=16, ckpt=True), gpu, mfu=0.5)
    assert ckpt.gpu_hours == pytest.approx(e.gpu_hours * 8 / 6)
    assert ckpt.gpu_gib < e.gpu_gib


def test_suggestion_is_the_cheapest_recipe_that_fits():
    """Brute force over the same candidates: nothing that fits is cheaper."""
    gpu = GPU("test-24gb", 22.5, True, 100.0, 8, "test")
    work = Work(get_size("xlmr-xl"), 32, 256, 100, choices=4)
    base = _recipe("zero3_bf16", workers=4, micro=8)
    assert not estimate(work, base, gpu).fits
    recipes = shipped_gpu_recipes()
    best = suggest(work, base, recipes, gpu)
    assert best is not None and best.fits and best.gpu_gib <= 0.9 * gpu.memory_gib
    for name, cfg in recipes.items():
        for workers in (1, 2, 4, 8, 16, 32):
            for micro in range(1, 32 // workers + 1):
                if (32 // workers) % micro:
                    continue
                for ckpt in (False, True):
                    r = replace(base, name=name, ds_config=cfg, workers=workers,
                                placement="pack" if workers <= 8 else "spread",
                                micro_batch=micro, checkpointing=ckpt)  # fmt: skip
                    e = estimate(work, r, gpu)
                    if e.fits:
                        assert e.gpu_hours >= best.gpu_hours - 1e-9


def test_a_gpu_without_bf16_never_fits_a_bf16_recipe():
    e = estimate(Work(get_size("xlmr-base"), 8, 64, 10), _recipe("zero2_bf16"), GPUS["v100-32gb"])
    assert not e.fits and "no bf16" in e.notes[0]


def _plan(*args):
    return subprocess.run(
        [sys.executable, "-m", "xscale.cli", "plan", str(REPO / "sweeps/scaling.yaml"), *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip


@pytest.mark.parametrize("gpu", ["a100-40gb", "h100-80gb"])
def test_plan_on_a_gpu_type_prints_fit_suggestions_hours_and_disk(gpu):
    proc = _plan("--gpu", gpu, "--price-per-gpu-hour", "2.5", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)["cluster"]
    assert plan["gpu"] == gpu and plan["gpu_hours"] > 0 and plan["cost"] > 0
    rows = {(r["model"], r["kind"]): r for r in plan["rows"]}
    assert {m for m, _ in rows} == {"xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl"}
    for r in rows.values():
        # the shipped sweep fits cluster.yaml's A100-40s and H100s with its own recipes
        assert r["sweep_recipe"]["fits"], r
        assert r["sweep_recipe"]["gpu_gib"] <= 0.9 * GPUS[gpu].memory_gib
        assert r["export_gb"] > 0 and r["gpu_hours"] > 0
        if r["suggestion"] is not None:  # only ever a cheaper one that fits too
            assert r["suggestion"]["fits"] and r["suggested_gpu_hours"] < r["gpu_hours"]
    assert rows[("xlmr-xl", "intermediate")]["sweep_recipe"]["micro_batch_size"] == 4
    # 4,080 stages' exports of 16-bit models: tens of terabytes, said before anything runs
    assert plan["export_gb"] > 20_000
    text = _plan("--gpu", gpu)
    assert "GPU-hours" in text.stdout and "disk: model exports" in text.stdout
    # ccg and bucc come from a folder on the cluster's shared storage, absent here: a warning
    assert "data.tasks.ccg: /shared/data does not exist" in text.stderr
    assert "no Hugging Face hub copy" not in text.stderr


def test_plan_refuses_an_unknown_gpu_and_a_bad_share():
    assert _plan("--gpu", "b300").returncode == 2
    bad = _plan("--gpu", "h100-80gb", "--mfu", "1.5")
    assert bad.returncode == 2 and "--mfu" in bad.stderr


VALIDATE = """
import json
from xscale.catalog.recipes import load_ds_config
from xscale.train.distributed import init_distributed
from xscale.catalog.cluster import micro_and_accumulation
from xscale.catalog.sizes import SIZES
from deepspeed.runtime.config import DeepSpeedConfig
init_distributed()  # a lone process; the world size comes from the mpu below
out = {}
for s in SIZES.values():
    if s.tiny:
        continue
    world = s.total_gpus
    micro, accum = micro_and_accumulation(32, world, s.micro_batch_size)
    cfg = load_ds_config(s.deepspeed_config, micro_batch_size=micro, grad_accum=accum,
                         device="cuda", world_size=world)
    class DataParallel:  # DeepSpeed reads the data-parallel world size from an mpu
        def get_data_parallel_world_size(self): return world
        def get_data_parallel_rank(self): return 0
    ds = DeepSpeedConfig(cfg, mpu=DataParallel())
    out[s.name] = [ds.world_size, ds.zero_optimization_stage, ds.train_batch_size,
                   ds.gradient_accumulation_steps, ds.bfloat16_config.enabled]
print(json.dumps(out))
"""


def test_every_real_size_recipe_passes_deepspeeds_own_config_at_its_world_size():
    proc = subprocess.run(
        [sys.executable, "-c", VALIDATE], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (world, stage, batch, accum, bf16) in got.items():
        size = get_size(name)
        assert world == size.total_gpus and batch == 32 and bf16
        assert accum == micro_and_accumulation(32, world, size.micro_batch_size)[1]
        _, cfg = read_config(size.deepspeed_config)
        assert stage == cfg["zero_optimization"]["stage"]  # not silently another stage


def test_a_mixtures_task_reads_its_own_data_root(tmp_path):
    """`data.tasks.ccg` applies inside the all-task mixture too (the mixture read every task from
    data.root: scaling.yaml's ccg override could never serve `mix:all`)."""
    from xscale.graph.expand import expand
    from xscale.graph.plan import hub_gaps
    from xscale.sweep.schema import build_sweep

    raw = {
        "name": "m",
        "output_dir": str(tmp_path / "out"),
        "models": ["xlmr-base"],
        "intermediate_tasks": ["ccg", {"mixture": ["mnli", "ccg"], "name": "mix"}],
        "target_tasks": ["xnli"],
        "data": {"root": "hub", "tasks": {"ccg": str(tmp_path)}},
    }
    graph = expand(build_sweep(raw, "m.yaml"))
    (mix,) = [g for g in graph.groups.values() if g.base.get("mixture")]
    assert mix.base["task_roots"] == {"ccg": str(tmp_path)}
    spec = mix.stage({}, None)
    assert spec.root_for("ccg") == str(tmp_path) and spec.root_for("mnli") == "hub"
    assert hub_gaps(graph) == {}
    raw["data"] = {"root": "hub"}
    assert set(hub_gaps(expand(build_sweep(raw, "m.yaml")))) == {"ccg"}
