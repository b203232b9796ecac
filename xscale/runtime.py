"""Process-wide runtime settings every layer uses: quiet libraries, verbosity, log lines.

A leaf module: it imports nothing heavy at import time, so the CLI's fast commands (`sizes`,
`tasks`, `plan`, `status`, `analyze`) never pay for torch, transformers, DeepSpeed or Ray.

Verbosity (`-q` / `-v` on the command line, inherited by trial processes through
`XSCALE_VERBOSITY`): 0 quiet (errors and the final summary only), 1 normal, 2 verbose
(stage logs of every trial streamed to the driver, library warnings kept).
"""

from __future__ import annotations

import logging
import os
import sys
import time

VERBOSITY_ENV = "XSCALE_VERBOSITY"


def verbosity() -> int:
    try:
        return int(os.environ.get(VERBOSITY_ENV, "1"))
    except ValueError:
        return 1


def set_verbosity(level: int) -> None:
    """Set for this process and every process it starts (Ray trials inherit the environment)."""
    os.environ[VERBOSITY_ENV] = str(max(0, min(2, level)))


def quiet_environment() -> None:
    """Keep library chatter out of the progress output. Sets environment variables only, so it
    is cheap; libraries read them when (and if) they are imported."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if verbosity() < 2 else "warning")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for name in ("DeepSpeed", "deepspeed", "torch.distributed", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING if verbosity() < 2 else logging.INFO)
    # a store that fails a write (full disk, locked database) logs the whole SQL error; xscale
    # keeps the events in their journal and says so in one line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def cpu_accelerator_if_no_gpu() -> None:
    """Tell DeepSpeed to use its CPU accelerator when torch sees no GPU. Call it before the
    first `import deepspeed` of a process (it imports torch, which that process needs anyway)."""
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def say(label: str, msg: str) -> None:
    """A timestamped progress line on stderr (rank 0 only under several workers)."""
    if verbosity() == 0 or _rank() != 0:
        return
    print(f"[{time.strftime('%H:%M:%S')}] {label}: {msg}", file=sys.stderr, flush=True)


def _rank() -> int:
    if "torch.distributed" in sys.modules:
        dist = sys.modules["torch.distributed"]
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    return 0
