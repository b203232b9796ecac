"""Live progress of a sweep: stages done / running / failed / left, the running stages' step and
loss, and an ETA from the stages' cost estimates.

Each training stage writes `<stage folder>/progress.json` (`write_stage_progress`) every time it
logs; the driver reads those files for the stages it is running (they sit on the shared output
folder, so this works across a cluster too) and `xscale status` reads them for any stage.

Display: on a terminal, a rich live panel redrawn twice a second; otherwise (CI logs, files)
one line per event (started, finished, failed) plus a summary line with the running stages
every `plain_every` seconds. `-q` prints nothing until the final summary.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from xscale.graph.stage import read_stage_progress


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@dataclass
class Running:
    label: str
    key: str | None
    cost: float
    started: float = field(default_factory=time.time)


class SweepProgress:
    """Counts and running stages of one sweep, shown live (see the module docstring)."""

    def __init__(
        self,
        name: str,
        total: int,
        done: int,
        total_cost: float,
        done_cost: float,
        stages_dir: Path,
        verbosity: int = 1,
        live: bool | None = None,
        plain_every: float = 30.0,
        stream=None,
    ):
        self.name, self.total, self.done = name, total, done
        self.failed, self.ran = 0, 0
        self.total_cost, self.done_cost = total_cost, done_cost
        self.cost_this_run = 0.0
        self.stages_dir = Path(stages_dir)
        self.verbosity = verbosity
        self.stream = stream or sys.stderr
        self.live = (self.stream.isatty() and verbosity == 1) if live is None else live
        self.plain_every = plain_every
        self.running: dict[str, Running] = {}
        self.t0 = time.time()
        self._lock = threading.Lock()
        self._live = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # ---------------------------------------------------------------- events
    def started(self, trial_id: str, label: str, key: str | None, cost: float) -> None:
        with self._lock:
            self.running[trial_id] = Running(label, key, cost)
        self._event(f"started {label}")

    def set_key(self, trial_id: str, key: str) -> None:
        with self._lock:
            if trial_id in self.running:
                self.running[trial_id].key = key

    def ended(self, trial_id: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            r = self.running.pop(trial_id, None)
            self.ran += 1
            if ok:
                self.done += 1
                if r is not None:
                    self.done_cost += r.cost
                    self.cost_this_run += r.cost
            else:
                self.failed += 1
        label = r.label if r else trial_id
        self._event(
            f"finished {label}" if ok else f"FAILED {label}" + (f" ({detail})" if detail else "")
        )

    def note(self, message: str) -> None:
        self._event(message)

    # ---------------------------------------------------------------- numbers
    @property
    def left(self) -> int:
        return max(0, self.total - self.done - self.failed - len(self.running))

    def _stage_position(self, r: Running) -> dict | None:
        return read_stage_progress(self.stages_dir / r.key) if r.key else None

    def eta_seconds(self) -> float | None:
        """Remaining cost / the cost rate seen so far in this run (finished stages plus the
        finished share of running ones); None until some work is done."""
        elapsed = time.time() - self.t0
        partial = 0.0
        for r in list(self.running.values()):
            pos = self._stage_position(r)
            if pos and pos.get("total"):
                partial += r.cost * min(1.0, pos["step"] / pos["total"])
        work = self.cost_this_run + partial
        if work <= 0 or elapsed < 1:
            return None
        remaining = max(0.0, self.total_cost - self.done_cost - partial)
        return remaining * elapsed / work

    def summary_line(self) -> str:
        eta = self.eta_seconds()
        return (
            f"{self.name}: done {self.done}/{self.total} | running {len(self.running)} | "
            f"failed {self.failed} | left {self.left} | {clock(time.time() - self.t0)}"
            + (f" | ETA {clock(eta)}" if eta is not None and (self.running or self.left) else "")
        )

    def running_lines(self) -> list[str]:
        lines = []
        for r in sorted(self.running.values(), key=lambda r: r.started):
            pos = self._stage_position(r)
            where = ""
            if pos:
                tag = f" [{pos['tag']}]" if pos.get("tag") else ""
                where = f" step {pos['step']}/{pos['total']} loss {pos['loss']:.3f}{tag}"
            lines.append(f"{r.label}{where} ({clock(time.time() - r.started)})")
        return lines

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "total": self.total,
            "done": self.done,
            "running": len(self.running),
            "failed": self.failed,
            "left": self.left,
            "elapsed_s": time.time() - self.t0,
            "eta_s": self.eta_seconds(),
            "running_stages": self.running_lines(),
        }

    # ---------------------------------------------------------------- display
    def _event(self, message: str) -> None:
        if self.verbosity == 0:
            return
        if self._live is not None:
            self._live.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")
            return
        self._print(f"{message} | {self.summary_line()}")

    def _print(self, line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] sweep: {line}", file=self.stream, flush=True)

    def _render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=bool(self.running), pad_edge=False)
        table.add_column("running stage")
        table.add_column("step", justify="right")
        table.add_column("loss", justify="right")
        table.add_column("time", justify="right")
        for r in sorted(self.running.values(), key=lambda r: r.started):
            pos = self._stage_position(r) or {}
            step = f"{pos['step']}/{pos['total']}" if pos.get("total") else "-"
            loss = f"{pos['loss']:.3f}" if isinstance(pos.get("loss"), float) else "-"
            table.add_row(r.label, step, loss, clock(time.time() - r.started))
        return Group(Text(self.summary_line(), style="bold"), table)

    def __enter__(self) -> SweepProgress:
        if self.verbosity == 0:
            return self
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            self._live = Live(get_renderable=self._render, console=console, refresh_per_second=2)
            self._live.__enter__()
        else:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(self.plain_every):
            if self.running:
                self._print(self.summary_line())
                for line in self.running_lines():
                    self._print(f"  {line}")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None
