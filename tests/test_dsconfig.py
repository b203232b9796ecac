"""DeepSpeed recipes: every shipped JSON validates and resolves; errors name file and key path;
memory estimates match DeepSpeed's own estimators; a resolved recipe trains a step on CPU."""

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xscale.catalog import recipes as dsconfig
from xscale.catalog.memory import estimate_memory, estimate_memory_bytes
from xscale.catalog.recipes import (
    DEEPSPEED_TOP_LEVEL_KEYS,
    available_configs,
    load_ds_config,
    resolve_ds_config,
)
from xscale.catalog.sizes import SIZES, get_size
from xscale.errors import XScaleError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (REPO / "deepspeed_configs").glob("*.json"))


def write(tmp_path, text, name="cfg.json"):
    path = tmp_path / name
    path.write_text(text if isinstance(text, str) else json.dumps(text, indent=2))
    return path


def test_the_expected_recipes_ship():
    assert {
        "cpu_zero2.json",
        "zero2_bf16.json",
        "zero3_bf16.json",
        "zero3_offload_bf16.json",
    } <= set(SHIPPED)
    assert set(SHIPPED) <= set(available_configs())
    for size in SIZES.values():
        assert size.deepspeed_config in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_resolves_to_fp32_on_cpu(name):
    cfg, notes = resolve_ds_config(name, micro_batch_size=4, grad_accum=2, device="cpu")
    assert cfg["train_micro_batch_size_per_gpu"] == 4
    assert cfg["gradient_accumulation_steps"] == 2
    assert cfg["train_batch_size"] == 8
    assert cfg["gradient_clipping"] == 1.0
    assert "auto" not in json.dumps(cfg)
    assert not cfg.get("bf16", {}).get("enabled") and not cfg.get("fp16", {}).get("enabled")
    assert "optimizer" not in cfg and "scheduler" not in cfg
    zero = cfg["zero_optimization"]
    for key in ("offload_optimizer", "offload_param"):
        assert not zero.get(key, {}).get("pin_memory", False)
    raw = json.loads((REPO / "deepspeed_configs" / name).read_text())
    if raw.get("bf16", {}).get("enabled"):
        assert "bf16.enabled -> false (fp32 on CPU)" in notes


def test_cuda_keeps_bf16_and_offload_and_scales_batch_with_world_size():
    cfg = load_ds_config("zero3_offload_bf16", micro_batch_size=2, device="cuda", world_size=8)
    assert cfg["bf16"]["enabled"] is True
    assert cfg["train_batch_size"] == 16
    assert cfg["zero_optimization"]["offload_param"] == {"device": "cpu", "pin_memory": True}
    assert cfg["zero_force_ds_cpu_optimizer"] is False


def test_name_path_and_env_dir_lookup(tmp_path, monkeypatch):
    by_name = load_ds_config("cpu_zero2.json", micro_batch_size=1)
    by_stem = load_ds_config("cpu_zero2", micro_batch_size=1)
    by_path = load_ds_config(REPO / "deepspeed_configs" / "cpu_zero2.json", micro_batch_size=1)
    assert by_name == by_stem == by_path
    write(tmp_path, {"zero_optimization": {"stage": 1}, "_comment": "mine"}, "mine.json")
    monkeypatch.setenv(dsconfig.CONFIG_DIR_ENV, str(tmp_path))
    cfg = load_ds_config("mine", micro_batch_size=1, world_size=2)
    assert cfg["zero_optimization"]["stage"] == 1 and "_comment" not in cfg
    with pytest.raises(XScaleError, match="'nope'.*cpu_zero2.json"):
        load_ds_config("nope", micro_batch_size=1)


def test_one_cpu_process_runs_zero_0():
    """ZeRO-1/2 partition over the ranks; one CPU process gets stage 0 (nothing to partition),
    several processes or a GPU keep the recipe's stage."""
    cfg, notes = resolve_ds_config("cpu_zero2.json", micro_batch_size=8)
    assert cfg["zero_optimization"]["stage"] == 0
    assert any("stage 2 -> 0" in n for n in notes)
    for kw in ({"world_size": 2}, {"device": "cuda"}):
        cfg, _ = resolve_ds_config("cpu_zero2.json", micro_batch_size=8, **kw)
        assert cfg["zero_optimization"]["stage"] == 2, kw
    cfg, _ = resolve_ds_config("zero3_offload_bf16.json", micro_batch_size=8)
    assert cfg["zero_optimization"]["stage"] == 3  # a recipe for sharding parameters stays


def test_resolver_sets_client_optimizer_flag_and_cpu_fixups(tmp_path):
    path = write(
        tmp_path,
        {
            "fp16": {"enabled": True},
            "communication_data_type": "fp16",
            "zero_optimization": {
                "stage": 2,
                "offload_optimizer": {"device": "nvme", "nvme_path": "/nvme"},
            },
        },
    )
    cfg, notes = resolve_ds_config(path, micro_batch_size=1, device="cpu")
    assert cfg["fp16"]["enabled"] is False and "communication_data_type" not in cfg
    assert cfg["zero_optimization"]["offload_optimizer"] == {"device": "cpu", "pin_memory": False}
    assert cfg["zero_force_ds_cpu_optimizer"] is False
    assert len(notes) == 5


@pytest.mark.parametrize(
    "body,expected",
    [
        ('{\n  "zero_optimization": {"stage": 2,}\n}', r"invalid JSON at line 2"),
        (
            {"zero_optimisation": {"stage": 2}},
            r"zero_optimisation: unknown key.*'zero_optimization'",
        ),
        (
            {"zero_optimization": {"stage": 5}},
            r"zero_optimization\.stage: must be 0, 1, 2 or 3 \(got 5\)",
        ),
        (
            {"zero_optimization": {"stage": 2, "overlap_comm": "maybe"}},
            r"zero_optimization\.overlap_comm: Input should be a valid boolean",
        ),
        (
            {"zero_optimization": {"stage": 2, "reduce_bucket_size": [1]}},
            r"zero_optimization\.reduce_bucket_size: ",
        ),
        ({"zero_optimization": {"stage": 2, "bogus": 1}}, r"zero_optimization\.bogus: unknown key"),
        (
            {"zero_optimization": {"offload_param": {"device": "gpu"}}},
            r"zero_optimization\.offload_param\.device: Input should be 'none', 'cpu' or 'nvme'",
        ),
        ({"zero_optimization": 3}, r"zero_optimization: must be a JSON object"),
        ({"bf16": {"enabled": True}, "fp16": {"enabled": True}}, r"bf16\.enabled/fp16\.enabled"),
        ({"fp16": {"enabled": True, "loss_scale": "x"}}, r"fp16\.loss_scale: "),
        ({"optimizer": {"type": "AdamW"}}, r"optimizer: not allowed: xscale passes its own"),
        ({"train_micro_batch_size_per_gpu": 0}, r"train_micro_batch_size_per_gpu: must be a pos"),
        ({"gradient_clipping": "high"}, r"gradient_clipping: must be a number"),
        ('{"fp16": {}, "fp16": {}}', r"duplicate key 'fp16'"),
        ("[1, 2]", r"top level must be a JSON object"),
    ],
)
def test_errors_name_the_file_and_key_path(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(XScaleError, match=expected) as exc:
        load_ds_config(path, micro_batch_size=1)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_passed_validation_is_remembered_and_a_failed_one_is_not(tmp_path, monkeypatch):
    """Checking the ZeRO/bf16 sections imports DeepSpeed and torch (2-3 s of every sweep's
    start); a pass is remembered per (sections, versions), so a fresh process checks a known
    recipe without importing them, while a bad section is checked, and reported, every time."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XSCALE_CACHE_DIR", str(cache))
    good = dsconfig.read_config("cpu_zero2")[1]
    dsconfig.validate_config(good, "good.json")
    assert len(list((cache / "recipes").iterdir())) == 1
    bad = {**good, "zero_optimization": {**good["zero_optimization"], "stage": "two"}}
    for _ in range(2):
        with pytest.raises(XScaleError, match="zero_optimization"):
            dsconfig.validate_config(bad, "bad.json")
    assert len(list((cache / "recipes").iterdir())) == 1
    code = textwrap.dedent(
        f"""
        import json, sys
        from xscale.catalog import recipes
        recipes.validate_config(json.loads({json.dumps(json.dumps(good))}), "good.json")
        print("deepspeed" in sys.modules, "torch" in sys.modules)
        """
    )
    env = {**os.environ, "XSCALE_CACHE_DIR": str(cache)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["False", "False"]
    env["XSCALE_CACHE_DIR"] = ""  # off: validated every time
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.stdout.split() == ["True", "True"], run.stderr[-2000:]


def test_concrete_batch_value_must_agree_with_the_stage(tmp_path):
    path = write(tmp_path, {"train_micro_batch_size_per_gpu": 8})
    assert load_ds_config(path, micro_batch_size=8)["train_batch_size"] == 8
    with pytest.raises(XScaleError, match=r"train_micro_batch_size_per_gpu: is 8 .* needs 4"):
        load_ds_config(path, micro_batch_size=4)


def test_allowlisted_keys_exist_in_installed_deepspeed():
    import deepspeed

    source = "\n".join(
        p.read_text(errors="ignore") for p in Path(deepspeed.__file__).parent.rglob("*.py")
    )
    missing = [
        k for k in DEEPSPEED_TOP_LEVEL_KEYS if f'"{k}"' not in source and f"'{k}'" not in source
    ]
    assert not missing


@pytest.mark.parametrize("name", ["tiny-s", "xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl"])
@pytest.mark.parametrize("num_gpus", [1, 4, 8])
def test_estimates_match_deepspeed_estimators(name, num_gpus):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    size = get_size(name)
    p, big = size.params, size.largest_layer_params
    for offload in (False, True):
        ours = estimate_memory_bytes(p, big, 2, num_gpus, offload)
        theirs = estimate_zero2_model_states_mem_needs(p, num_gpus, 1, cpu_offload=offload)
        assert ours == theirs
    for mode, (opt, par) in {
        "none": (False, False),
        "optimizer": (True, False),
        "optimizer+param": (True, True),
    }.items():
        ours = estimate_memory_bytes(p, big, 3, num_gpus, mode)
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
            p, big, num_gpus, 1, cpu_offload=opt, cpu_offload_params=par, zero_init=True
        )
        assert ours == (cpu, gpu)


def test_estimate_matches_deepspeed_printed_table():
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs_all_cold

    size = get_size("xlmr-xl")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        estimate_zero3_model_states_mem_needs_all_cold(size.params, size.largest_layer_params, 4, 1)
    rows = [line for line in out.getvalue().splitlines() if "offload_param=none" in line]
    row = next(r for r in rows if "offload_optimizer=none" in r and "zero_init=1" in r)
    printed_gpu = float(row.split("|")[1].strip().removesuffix("GB"))
    assert estimate_memory(size, 3, 4).per_gpu_gib == pytest.approx(printed_gpu, abs=0.005)


def test_estimates_shrink_with_sharding_and_offload():
    size = get_size("xlmr-large")
    per_gpu = [estimate_memory(size, stage, 4).per_gpu_gib for stage in (0, 1, 2, 3)]
    assert per_gpu == sorted(per_gpu, reverse=True)
    assert estimate_memory(size, 3, 4, "optimizer+param").per_gpu_gib < per_gpu[3]
    assert estimate_memory("tiny-s", 2, 0).per_gpu_gib == 0
    with pytest.raises(XScaleError, match="stage"):
        estimate_memory(size, 4, 1)


DS_STEP = textwrap.dedent(
    """
    import sys, time
    import torch, deepspeed
    import torch.distributed as dist
    from xscale.catalog.recipes import load_ds_config, skip_shm_comm_build

    skip_shm_comm_build()
    cfg = load_ds_config(sys.argv[1], micro_batch_size=4, device="cpu")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    start = time.time()
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=cfg)
    x, y = torch.randn(4, 8), torch.randn(4, 1)
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.mse_loss(engine(x), y)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    dtype = next(engine.module.parameters()).dtype
    print("RESULT", losses[0], losses[-1], dtype, round(time.time() - start, 2))
    dist.barrier()
    dist.destroy_process_group()
    """
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["cpu_zero2", "zero3_offload_bf16"])
def test_deepspeed_trains_a_step_on_cpu(tmp_path, name):
    env = dict(
        os.environ,
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        RANK="0",
        WORLD_SIZE="1",
        LOCAL_RANK="0",
        HF_HUB_OFFLINE="1",
        TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"),
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", DS_STEP, name],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    first, last, dtype, _seconds = line.split()[1:]
    assert dtype == "torch.float32"
    assert float(last) < float(first)  # the optimizer really stepped
    assert not (tmp_path / "ext").exists()  # nothing JIT-compiled (shm_comm skipped, torch AdamW)
