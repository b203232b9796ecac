"""Loading task examples from a *data root*: the Hugging Face hub, the shipped fixtures or a folder.

A data root is one of
- ``"hub"``: ``datasets.load_dataset(<task.hub.dataset_id>, <config>, split=...)``; Mewsli-X's
  hub copy is fetched file by file and assembled into the folder layout below
  (``data.mewslix_hub``); LAReQA's XQuAD-R has no hub copy;
- ``"fixtures"``: the synthetic data shipped in ``xscale/fixtures/data`` (see its README);
- a folder in XTREME's download layout (files read by ``xscale.data.readers``)::

      <root>/xtreme/xnli/{train,dev,test}-<lang>.tsv      premise, hypothesis, label (no header)
      <root>/xtreme/pawsx/{train,dev,test}-<lang>.tsv     sentence1, sentence2, 0/1 (no header)
      <root>/xtreme/udpos/{train,dev,test}-<lang>.tsv     token TAB UPOS, blank line between
      <root>/xtreme/panx/{train,dev,test}-<lang>.tsv      token TAB B-PER/I-ORG/O...  sentences
      <root>/xtreme/xquad/xquad.<lang>.json               SQuAD v1.1 json (test)
      <root>/xtreme/mlqa/MLQA_V1/test/test-context-<l>-question-<l>.json   (test; MLQA_V1/dev/
                                                          dev-context-... when there is no test/)
      <root>/xtreme/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.<lang>.dev.json   (test)
      <root>/xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json   (train, dev)
      <root>/xtreme/xcopa/test-<lang>.jsonl               XCOPA jsonl (or <lang>/test.<lang>.jsonl)
      <root>/xtreme/tatoeba/v1/tatoeba.<xxx>-eng.{<xxx>,eng}   aligned lines (test)
      <root>/xtreme/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold}   id TAB sentence; gold pairs
      <root>/xtreme/lareqa/xquad-r/<lang>.json            XQuAD-R: SQuAD json + sentence_breaks
      <root>/xtreme/mewslix/{candidate_set_entities,wikipedia_pairs-{train,dev},
                            wikinews_mentions-test}.jsonl  Mewsli-X release files (data/pools.py)
      <root>/intermediate/mnli/{train,dev_matched,dev_mismatched}.tsv   GLUE MNLI tsv
      <root>/intermediate/anli/R1/{train,dev,test}.jsonl  ANLI v1.0 jsonl (label e/n/c)
      <root>/intermediate/anli/ANLI_analysis_r1_dev.csv   dev split, when there is no R1 folder
      <root>/intermediate/sst2/{train,dev,test}.tsv       header `sentence` (or `text`) and `label`
      <root>/intermediate/qqp/{train,dev}.tsv             GLUE QQP tsv (question1, question2,
                                                          is_duplicate)
      <root>/intermediate/squad/{train,dev}-v1.1.json     SQuAD v1.1 (also the QA targets' train
                                                          and dev data)
      <root>/intermediate/squad2/{train,dev}-v2.0.json    SQuAD v2.0
      <root>/intermediate/ccg/{train,dev}.tsv             token TAB supertag (CCGbank: licensed,
                                                          the user supplies it)
      <root>/intermediate/hellaswag/hellaswag_{train,val}.jsonl
      <root>/intermediate/csqa/{train_rand_split,dev_rand_split}.jsonl  (dev: or valid.jsonl)
      <root>/intermediate/cosmosqa/{train,valid}.jsonl    (+ {train,valid}-labels.lst)
      <root>/intermediate/siqa/{train,dev}.jsonl          (+ {train,dev}-labels.lst, labels 1-3)
      <root>/intermediate/copa/{train,val}.jsonl          SuperGLUE COPA (also XCOPA's train/dev)

  MNLI's dev split is dev_matched and its test split dev_mismatched (GLUE's test files have no
  labels); the hub task maps the same way. MNLI rows whose gold_label is "-" are skipped.

English training data of zero-shot targets. XQuAD, MLQA and LAReQA train on SQuAD v1.1 and
XCOPA on COPA (and selects on COPA's dev set), as XTREME(-R) does: their training data *is* the
`squad` / `copa` task's (``registry.TRAINED_ON``); their own files give the test split. The
SQuAD-trained targets select models on passages held out of SQuAD's training file
(``rows.held_out_split``, about 10%; ``registry.SELECT_ON_HELD_OUT``), never on SQuAD's dev
set, which holds XQuAD's (and XQuAD-R's) English test questions. TyDiQA-GoldP
trains on its own English training set (as XTREME) and selects models on whole passages held
out of that file (``rows.held_out_split``, about 10%): its English evaluation file is scored
(``tydiqa.en``), so it is never the selection set.

Group split (XNLI, PAWS-X, UD-POS, PAN-X). When a target task's folder holds only
``dev-<lang>.tsv`` files (no ``train-*.tsv`` and no ``test-*.tsv``), as the real XTREME dev files
in ``../shared/data`` do, all three splits are cut from the dev files by groups of rows
(`xtreme.split_buckets`): rows sharing a sentence are one group, and a group goes to the bucket
``first_row % 10`` of its first row (buckets 0-5 ``train``, 6 ``dev``, 7-9 ``test``). For XNLI
and PAWS-X row i is the same example in every language and the groups come from the English
file, so no English test sentence, nor a translation of it, is trained on or used for
selection. When the folder has ``train-*.tsv`` or ``test-*.tsv`` files, every split is read from
its own files as they are.

Retrieval tasks (BUCC, Tatoeba) are not trained: they have a test split only. ``load_examples``
gives Tatoeba's aligned pairs and BUCC's gold pairs; ``load_bucc`` gives a BUCC corpus to mine.
BUCC's test split is ``<lang>-en.test.*`` (XTREME renames the BUCC training set so); a folder
with only ``dev`` files (as ``../shared/data``) serves its dev files as the test split.

Every error a user can fix (missing file, malformed row, unknown language) is an `XScaleError`
naming the task and the file (and line) at fault. Text files are split on "\\n" only: PAWS-X text
can contain U+2028, which `str.splitlines()` would wrongly treat as a row break.

Modules: `layout` (where each task's files are, the group split's buckets), `rows` (reading
and checking rows), `xtreme` (target-task folders and files, BUCC), `english` (English task
files), `hub` (the Hugging Face hub), `load` (`load_examples`) and `parallel` (English /
other-language sentence pairs for alignment metrics). Every public name is
importable from `xscale.data`.
"""

from __future__ import annotations

from xscale.data.english import ANLI_LETTERS, ENGLISH_READERS
from xscale.data.hub import HUB_ROWS
from xscale.data.layout import (
    BUCC_FOLDER,
    BUCKETS,
    FIXTURES,
    FIXTURES_DIR,
    HUB,
    TRAIN_BUCKETS,
    available_languages,
    bucc_splits,
    resolve_root,
    source_task,
)
from xscale.data.load import load_examples
from xscale.data.parallel import parallel_pairs
from xscale.data.pools import load_pool
from xscale.data.rows import read_utf8
from xscale.data.xtreme import load_bucc
from xscale.tasks.base import SPLITS, Example, Task

__all__ = [
    "ANLI_LETTERS",
    "BUCC_FOLDER",
    "BUCKETS",
    "ENGLISH_READERS",
    "Example",
    "FIXTURES",
    "FIXTURES_DIR",
    "HUB",
    "HUB_ROWS",
    "SPLITS",
    "TRAIN_BUCKETS",
    "Task",
    "available_languages",
    "bucc_splits",
    "load_bucc",
    "load_examples",
    "load_pool",
    "parallel_pairs",
    "read_utf8",
    "resolve_root",
    "source_task",
]
