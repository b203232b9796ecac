"""A run's tracking journal: everything a stage (or a sweep) logs, kept first in a local file.

Training never waits on the tracking server. Every MLflow operation of a run is appended to a
journal beside its outputs, then uploaded by `tracking.upload` (a background thread while the
stage runs, `xscale sync DIR` and the next run or sweep afterwards):

    <stage>/tracking.jsonl          one event per line, numbered: open, params, metrics,
                                    artifact, finish (a sweep's own run: <out>/tracking/*.jsonl)
    <stage>/tracking.sent.json      per tracking URI: the last event uploaded and the run's id
    <stage>/tracking.lock           held while one process uploads the journal

An event's number only grows, and the cursor is written after the event reached the server, so
every event is sent once; an event that was sent but whose cursor write was lost (a kill in
between) is sent again with its original timestamps, and MLflow stores an identical metric,
param or status once. The run itself is found again by its tag (`RunRef.tag` = value), never
created twice by one journal.

Only the process that owns a stage folder (its LOCK) appends to the stage's journal.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

JOURNAL = "tracking.jsonl"
CURSOR = "tracking.sent.json"
JOURNAL_LOCK = "tracking.lock"


@dataclass(frozen=True)
class RunRef:
    """Which MLflow run a journal belongs to, and how it is found (or created) on upload: the
    run tagged `tag` = `value` in `experiment`, nested under the run tagged `parent_tag` =
    `parent_value` (the sweep's) when one is named."""

    uri: str
    experiment: str
    tag: str
    value: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    artifact_root: str | None = None
    parent_tag: str | None = None
    parent_value: str | None = None

    @classmethod
    def from_json(cls, d: dict) -> RunRef:
        return cls(**d)


def cursor_path(journal: Path) -> Path:
    return journal.with_name(journal.stem + ".sent.json")


def lock_path(journal: Path) -> Path:
    return journal.with_name(journal.stem + ".lock")


class Journal:
    """Append-only events of one run (`path`, a .jsonl file)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._seq: int | None = None

    # ----- writing (the run's owner only)

    def _next_seq(self) -> int:
        if self._seq is None:
            events = self.read()
            self._seq = events[-1]["seq"] if events else 0
            self._repair_tail()
        self._seq += 1
        return self._seq

    def _repair_tail(self) -> None:
        """Drop a half-written last line (the writer was killed mid-line)."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)

    def append(self, op: str, **fields) -> dict:
        event = {"seq": self._next_seq(), "op": op, "time": int(time.time() * 1000), **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event, separators=(",", ":")) + "\n")
        return event

    def open(self, ref: RunRef) -> None:
        """A new attempt of the run (the run is RUNNING again)."""
        self.append("open", ref=asdict(ref))

    def params(self, params: dict) -> None:
        self.append("params", params={k: str(v) for k, v in params.items()})

    def metrics(self, metrics: dict[str, float], step: int) -> None:
        values = {k: float(v) for k, v in metrics.items() if v is not None}
        if values:
            self.append("metrics", metrics=values, step=int(step))

    def artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.append("artifact", path=str(path), artifact_path=artifact_path)

    def finish(self, status: str) -> None:
        self.append("finish", status=status)

    # ----- reading

    def read(self) -> list[dict]:
        """Every complete event, in order (a torn last line is ignored)."""
        if not self.path.is_file():
            return []
        events = []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return events

    def ref(self) -> RunRef | None:
        """The run this journal belongs to (its first `open` event)."""
        for e in self.read():
            if e.get("op") == "open":
                return RunRef.from_json(e["ref"])
        return None


def read_cursor(journal: Path, uri: str) -> tuple[int, str | None]:
    """(last event sent, run id) for the store at `uri`; (0, None) if nothing was sent there."""
    try:
        record = json.loads(cursor_path(journal).read_text()).get(uri) or {}
    except (OSError, ValueError, AttributeError):
        return 0, None
    return int(record.get("seq", 0)), record.get("run_id")


def write_cursor(journal: Path, uri: str, seq: int, run_id: str) -> None:
    path = cursor_path(journal)
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            record = {}
    except (OSError, ValueError):
        record = {}
    record[uri] = {"seq": seq, "run_id": run_id}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def pending(journal: Path, uri: str | None = None) -> int:
    """Events of `journal` not yet sent to `uri` (default: the journal's own store)."""
    j = Journal(journal)
    events = j.read()
    if not events:
        return 0
    if uri is None:
        ref = j.ref()
        if ref is None:
            return 0
        uri = ref.uri
    seq, _ = read_cursor(journal, uri)
    return sum(1 for e in events if e["seq"] > seq)
