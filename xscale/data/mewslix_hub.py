"""Mewsli-X from its Hugging Face hub copy, assembled into the release layout.

Mewsli-X's release (google-research/google-research, ``dense_representations_for_entity_retrieval
/mel``) leaves the WikiNews text out; its ``get-mewsli-x.sh`` fills it in. The hub dataset
`HUB_ID` (pinned at `REVISION`) holds the filled-in files, split by language, the large ones
as tar.gz archives. `hub_root` downloads them once (``huggingface_hub``, so ``HF_HOME`` and
``HF_HUB_OFFLINE`` apply), writes them as the files of XTREME's download layout under
``<HF_HOME>/xscale/mewsli-x-<revision>/xtreme/mewslix/`` (each file to a temporary name, then
renamed: a folder is complete or absent), and returns that folder as the data root. The same
readers as for a local download then read them, checking every mention against its text, so a
copy in another schema, or one whose text was never filled in, is refused with its file and
line, never scored.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from xscale.data.layout import MEWSLIX_FILES, MEWSLIX_FOLDER
from xscale.errors import XScaleError

HUB_ID = "izhx/mewsli-x"
REVISION = "7e3723faa15c6d84cfd56d66cf6cd347be8ad00e"
# release file (layout.MEWSLIX_FILES key) <- the hub copy's files
ARCHIVES = {
    "train": "wikipedia_pairs/train.jsonl.tar.gz",
    "dev": "wikipedia_pairs/dev.jsonl.tar.gz",
    "candidates": "candidate_entities.jsonl.tar.gz",
}
TEST_FILE = "wikinews_mentions/{lang}/test.jsonl"  # one per language


def _hf_download(filename: str) -> str:
    from huggingface_hub import hf_hub_download

    return hf_hub_download(HUB_ID, filename, repo_type="dataset", revision=REVISION)


def cache_root() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "xscale" / f"mewsli-x-{REVISION[:12]}"


def hub_root(
    languages: tuple[str, ...],
    download: Callable[[str], str] = _hf_download,
    root: Path | None = None,
) -> Path:
    """A data root holding Mewsli-X in the release layout, built from the hub copy on first use."""
    root = root or cache_root()
    folder = root / MEWSLIX_FOLDER
    wanted = {split: folder / name for split, name in MEWSLIX_FILES.items()}
    if all(p.is_file() for p in wanted.values()):
        return root
    folder.mkdir(parents=True, exist_ok=True)
    for split, archive in ARCHIVES.items():
        if not wanted[split].is_file():
            _write(wanted[split], lambda out, a=archive: _extract(_fetch(download, a), out))
    if not wanted["test"].is_file():

        def concat(out):
            for lang in languages:  # one file of every language's mentions, as the release
                with open(_fetch(download, TEST_FILE.format(lang=lang)), "rb") as f:
                    shutil.copyfileobj(f, out)

        _write(wanted["test"], concat)
    return root


def _fetch(download: Callable[[str], str], filename: str) -> str:
    try:
        return download(filename)
    except Exception as e:  # offline, unreachable, renamed upstream: one line, what to do
        raise XScaleError(
            f"task mewslix: could not fetch {filename} of the hub dataset {HUB_ID}@{REVISION[:7]}"
            f" ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); give a folder"
            f" holding {MEWSLIX_FOLDER}/ (XTREME's download script) as data.tasks.mewslix"
        ) from None


def _extract(archive: str, out) -> None:
    """Copy the one ``.jsonl`` member of a tar.gz archive into the open file `out`."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jsonl")]
            if len(members) != 1:
                raise XScaleError(
                    f"task mewslix: {archive}: expected one .jsonl file in the archive, found"
                    f" {len(members)}"
                )
            shutil.copyfileobj(tar.extractfile(members[0]), out)
    except tarfile.TarError as e:
        raise XScaleError(f"task mewslix: {archive}: not a readable tar archive ({e})") from None


def _write(path: Path, fill: Callable) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            fill(out)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
