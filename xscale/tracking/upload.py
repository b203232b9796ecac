"""Uploading journals to MLflow: one journal (`upload_journal`), a run's background uploader
(`RunLog`, what stages and sweeps log through), and every journal of an output folder
(`sync_folder`, behind `xscale sync DIR` and the start and end of every run and sweep).

    RunLog.metrics(...) --append--> <stage>/tracking.jsonl --Uploader thread--> MLflow
                                                      \\--(server down: kept)--> xscale sync

A tracking server that stops answering costs a stage nothing: its events stay in the journal,
one line says so, and the stage finishes; the events go up when the server answers again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xscale.graph.stage import STAGES
from xscale.tracking.client import PARENT, PARENT_UID, RUN_KIND, Tracker, mlflow_ready
from xscale.tracking.journal import (
    JOURNAL,
    Journal,
    RunRef,
    lock_path,
    pending,
    read_cursor,
    write_cursor,
)

UPLOAD_INTERVAL = 2.0  # seconds between a running stage's upload attempts
CLOSE_WAIT = 15.0  # seconds a finishing stage gives its last upload before leaving it pending


def fail_fast_requests() -> None:
    """MLflow's REST client retries a dead server with back-off for minutes (7 retries, 120 s
    timeout each): uploads fail at once instead and are retried by xscale, from the journal.
    A user's own settings win."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class ParentPending(Exception):
    """The parent (sweep) run is not on the server yet: its own journal creates it first."""


@dataclass
class Outcome:
    """What one upload attempt did: `state` is done (nothing left), pending (left for later,
    `error` says why), busy (another process is uploading it) or empty (no journal)."""

    state: str
    sent: int = 0
    left: int = 0
    run_id: str | None = None
    error: str | None = None


@contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_NO_ANSWER = ("Max retries exceeded", "Failed to establish", "Connection refused", "timed out")


def _first_line(e: BaseException, uri: str | None = None) -> str:
    text = str(e).strip()
    if uri and any(s in text for s in _NO_ANSWER):
        return f"{uri} does not answer"
    return f"{type(e).__name__}: {text.splitlines()[0][:200] if text else ''}".rstrip(": ")


def _resolve_run(tracker: Tracker, ref: RunRef) -> str:
    found = tracker.find(ref.tag, ref.value)
    if found is not None:
        return found.info.run_id
    tags = {ref.tag: ref.value, **ref.tags}
    if ref.parent_tag:
        parent = tracker.find(ref.parent_tag, ref.parent_value)
        if parent is None:
            raise ParentPending(f"its sweep run ({ref.parent_value}) is not uploaded yet")
        tags[PARENT] = parent.info.run_id
    run = tracker.client.create_run(tracker.experiment_id, run_name=ref.name, tags=tags)
    return run.info.run_id


def _apply(tracker: Tracker, run_id: str, event: dict, base: Path) -> None:
    mlflow_ready()
    from mlflow.entities import Metric

    op = event["op"]
    if op == "open":
        tracker.client.update_run(run_id, status="RUNNING")
    elif op == "params":
        tracker.log_params(run_id, event["params"])
    elif op == "metrics":
        items = [Metric(k, v, event["time"], event["step"]) for k, v in event["metrics"].items()]
        for i in range(0, len(items), 900):
            tracker.client.log_batch(run_id, metrics=items[i : i + 900])
    elif op == "artifact":
        path = Path(event["path"])
        path = path if path.is_absolute() else base / path
        if path.exists():  # an artifact deleted since is skipped, not an error
            tracker.client.log_artifact(run_id, str(path), event.get("artifact_path"))
    elif op == "finish":
        tracker.client.set_terminated(run_id, status=event["status"], end_time=event["time"])


def upload_journal(path: Path, uri: str | None = None, trackers: dict | None = None) -> Outcome:
    """Send the events of journal `path` not yet sent to `uri` (default: the journal's own
    store). `trackers` caches one MLflow client per (uri, experiment) across calls."""
    journal = Journal(path)
    events = journal.read()
    ref = journal.ref()
    if not events or ref is None:
        return Outcome("empty")
    uri = uri or ref.uri
    seq, run_id = read_cursor(path, uri)
    todo = [e for e in events if e["seq"] > seq]
    if not todo:
        return Outcome("done", run_id=run_id)
    try:
        return _upload_locked(path, uri, ref, trackers, run_id, todo, events)
    except OSError as e:  # the journal's folder is read-only or full: kept for a later sync
        return Outcome("pending", 0, len(todo), run_id, f"{path.parent}: {e.strerror}")


def _upload_locked(path, uri, ref, trackers, run_id, todo, events) -> Outcome:
    with _try_lock(lock_path(path)) as mine:
        if not mine:
            return Outcome("busy", left=len(todo), run_id=run_id)
        seq, run_id = read_cursor(path, uri)  # another process may have sent some meanwhile
        todo = [e for e in events if e["seq"] > seq]
        sent = 0
        try:
            fail_fast_requests()
            key = (uri, ref.experiment)
            cache = trackers if trackers is not None else {}
            if key not in cache:
                cache[key] = Tracker(uri, ref.experiment, ref.artifact_root)
            tracker = cache[key]
            if run_id is None:
                run_id = _resolve_run(tracker, ref)
            for event in todo:
                _apply(tracker, run_id, event, path.parent)
                write_cursor(path, uri, event["seq"], run_id)
                sent += 1
        except Exception as e:  # noqa: BLE001 - any failure leaves the rest for later
            if trackers is not None:
                trackers.pop((uri, ref.experiment), None)  # reconnect next time
            return Outcome("pending", sent, len(todo) - sent, run_id, _first_line(e, uri))
    return Outcome("done", sent, 0, run_id)


class RunLog:
    """One MLflow run as a stage or sweep logs it: appended to its journal at once, uploaded
    by a background thread (every `UPLOAD_INTERVAL` s), so no call here waits on the network.
    `say(line)` reports, once, that the server is unreachable and where the events are kept."""

    def __init__(self, journal: Path, ref: RunRef, say: Callable[[str], None] | None = None):
        self.journal = Journal(journal)
        self.ref = ref
        self._say = say
        self._wake = threading.Event()
        self._attempted = threading.Event()  # set once an upload attempt has ended
        self._stop = False
        self._warned = False
        self._trackers: dict = {}
        self.last = Outcome("empty")
        self.journal.open(ref)
        self._thread = threading.Thread(target=self._loop, name="xscale-tracking", daemon=True)
        self._thread.start()
        self._wake.set()

    @property
    def run_id(self) -> str | None:
        """The MLflow run's id once it exists on the server (None while it is unreachable)."""
        return self.last.run_id or read_cursor(self.journal.path, self.ref.uri)[1]

    def wait_for_run(self, wait: float = 5.0) -> str | None:
        """The run's id, waiting at most `wait` seconds for the first upload attempt to end (it
        starts with the run, so by the end of a stage it normally has); None if the server
        has not answered."""
        self._attempted.wait(wait)
        return self.run_id

    def params(self, params: dict) -> None:
        self.journal.params(params)

    def metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        self.journal.metrics(metrics, step)

    def artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.journal.artifact(path, artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        self.journal.finish(status)
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(UPLOAD_INTERVAL)
            self._wake.clear()
            stopping = self._stop
            self.last = upload_journal(self.journal.path, self.ref.uri, self._trackers)
            self._attempted.set()
            if self.last.state == "pending" and not self._warned and self._say is not None:
                self._warned = True
                self._say(
                    f"tracking unreachable ({self.last.error}): logging to {self.journal.path},"
                    " uploaded when the server answers (or by xscale sync)"
                )
            if stopping:
                return

    def close(self, wait: float = CLOSE_WAIT) -> Outcome:
        """A last upload attempt, waited for at most `wait` seconds; what is left stays in the
        journal for `xscale sync` or the next run."""
        self._stop = True
        self._wake.set()
        self._thread.join(wait)
        return self.last


def parent_journal(output_dir: Path, uid: str) -> Path:
    """The journal of a sweep's (or trial's) own run, under `<output_dir>/tracking/`."""
    name = hashlib.sha256(uid.encode()).hexdigest()[:16]
    return Path(output_dir) / "tracking" / f"run-{name}.jsonl"


def folder_journals(output_dir: Path) -> list[Path]:
    """Every journal of an output folder: the sweep's (and trials') runs first, whose runs the
    stage runs nest under, then the stages'."""
    out = Path(output_dir)
    parents = sorted((out / "tracking").glob("*.jsonl"))
    stages = sorted((out / STAGES).glob(f"*/{JOURNAL}"))
    return parents + stages


@dataclass
class SyncReport:
    runs: int = 0  # journals with something to send
    sent: int = 0  # events sent
    pending_runs: int = 0  # journals with events left
    pending: int = 0
    error: str | None = None


def sync_folder(output_dir: Path, uri: str | None = None) -> SyncReport:
    """Upload what every journal of `output_dir` has not sent. Stops at the first journal the
    server refuses (the others would wait on the same dead server); they are counted."""
    report = SyncReport()
    trackers: dict = {}
    stopped = False
    for path in folder_journals(output_dir):
        if stopped:
            left = pending(path, uri)
            report.pending_runs += left > 0
            report.pending += left
            continue
        outcome = upload_journal(path, uri, trackers)
        report.runs += outcome.sent > 0 or outcome.left > 0
        report.sent += outcome.sent
        if outcome.state in ("pending", "busy") and outcome.left:
            report.pending_runs += 1
            report.pending += outcome.left
        if outcome.state == "pending" and not str(outcome.error).startswith("ParentPending"):
            report.error = outcome.error
            stopped = True
    return report


def open_parent(
    output_dir: Path,
    uri: str,
    experiment: str,
    uid: str,
    name: str,
    tags: dict[str, str],
    say: Callable[[str], None] | None = None,
) -> RunLog:
    """The run of a sweep (or trial) that its stage runs nest under, found again by `uid`."""
    ref = RunRef(
        uri=uri,
        experiment=experiment,
        tag=PARENT_UID,
        value=uid,
        name=name,
        tags={RUN_KIND: "sweep", **tags},
        artifact_root=str(Path(output_dir) / "mlartifacts"),
    )
    return RunLog(parent_journal(output_dir, uid), ref, say)


def catch_up(
    output_dir: Path, uri: str, experiment: str, is_complete: Callable[[str], bool]
) -> tuple[SyncReport, int]:
    """Before a run or sweep starts: send what earlier ones left in their journals, then finish
    the stage runs still RUNNING whose stage is complete (a kill between a stage's COMPLETE and
    its run's end). Returns the sync report and how many runs were finished; with the server
    unreachable, nothing is finished and the report says why."""
    report = sync_folder(output_dir)
    if report.error is not None:
        return report, 0
    try:
        fail_fast_requests()
        tracker = Tracker(uri, experiment, Path(output_dir) / "mlartifacts")
        return report, tracker.reconcile(is_complete)
    except Exception as e:  # noqa: BLE001 - the server went away meanwhile
        report.error = _first_line(e, uri)
        return report, 0


def pending_line(output_dir: Path, report: SyncReport, hint: bool = True) -> str | None:
    """One line on what is still only in journals, or None when everything is uploaded."""
    if not report.pending_runs:
        return None
    why = f" ({report.error})" if report.error else ""
    line = (
        f"tracking: {report.pending} events of {report.pending_runs} runs are kept in their"
        f" journals, not yet in MLflow{why}"
    )
    if hint:
        line += (
            f"; `xscale sync {output_dir}` uploads them (the next run or sweep on this folder"
            " does too)"
        )
    return line
