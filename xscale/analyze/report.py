"""The report folder: every table as CSV, the plots, and `report.md` / `report.html` rendered
from one list of blocks."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xscale.analyze.analysis import TABLES, Analysis
from xscale.analyze.difficulty_plots import difficulty_plots
from xscale.analyze.formatting import fmt, write_csv
from xscale.analyze.names import MISSING
from xscale.analyze.plots import make_plots
from xscale.analyze.questions import QUESTIONS, answer, reading_note

REPORT_FILES = ("report.md", "report.html", *(t.csv_file for t in TABLES))


@dataclass
class Block:
    kind: str  # "h1", "h2", "p", "list", "table", "img"
    text: str = ""
    rows: Sequence[Mapping[str, Any]] = ()
    items: Sequence[str] = ()


def table_block(rows: Sequence[Mapping[str, Any]]) -> Block:
    return Block("table", rows=[{k: fmt(v) for k, v in r.items()} for r in rows])


def render_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "list":
            out.append("\n".join(f"- {i}" for i in b.items))
        elif b.kind == "img":
            out.append(f"![{b.text}]({b.items[0]})")
        elif b.kind == "table" and b.rows:
            cols = list(b.rows[0])
            lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for r in b.rows:
                cells = (str(r.get(c, "")).replace("|", "\\|") for c in cols)
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}"
    "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
)


def render_html(blocks: Sequence[Block], folder: Path, title: str) -> str:
    esc = html.escape
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"]
    out.append(f"<style>{_CSS}</style></head><body>")
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{esc(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{esc(b.text)}</p>")
        elif b.kind == "list":
            out.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "img":
            data = base64.b64encode((folder / b.items[0]).read_bytes()).decode()
            out.append(f"<figure><img alt='{esc(b.text)}' src='data:image/png;base64,{data}'>")
            out.append(f"<figcaption>{esc(b.text)}</figcaption></figure>")
        elif b.kind == "table" and b.rows:
            cols = list(b.rows[0])
            out.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>")
            for r in b.rows:
                out.append("<tr>" + "".join(f"<td>{esc(str(r.get(c, '')))}</td>" for c in cols))
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def missing_summary(analysis: Analysis) -> str:
    total = len(analysis.scored.scores)
    n = len(analysis.missing)
    if n == 0:
        return f"All {total} cells have complete scores."
    return f"{n} of {total} cells missing (shown as {MISSING}, never averaged as zero)."


def report_blocks(
    analysis: Analysis, plots: Sequence[tuple[str, str]], header: Sequence[str]
) -> list[Block]:
    a = analysis
    blocks = [Block("h1", "xscale sweep analysis"), Block("list", items=list(header))]
    blocks.append(Block("h2", "Missing cells"))
    blocks.append(Block("p", missing_summary(a)))
    if a.missing:
        items = [
            f"{m['model_size']} / {m['intermediate_task']} / {m['target_task']} / "
            f"{m['train_languages']} / seed {m['seed']}: {m['reason']}"
            for m in a.missing
        ]
        blocks.append(Block("list", items=items))
    if a.scored.notes:
        blocks += [Block("h3", "Run selection notes"), Block("list", items=a.scored.notes)]
    blocks += [Block("h2", "How to read the answers"), Block("p", reading_note(a.scored))]
    for number, question in QUESTIONS.items():
        blocks.append(Block("h2", f"Q{number}. {question}"))
        blocks.append(Block("p", answer(number, a.tables, a.scored)))
        blocks += _table_blocks(a, [t for t in TABLES if t.question == number], "h3")
    blocks.append(Block("h2", "Scores and benchmark aggregates"))
    blocks += _table_blocks(a, [t for t in TABLES if t.question is None], "h3")
    blocks.append(Block("h2", "Plots"))
    for path, caption in plots:
        blocks.append(Block("img", caption, items=[path]))
    blocks.append(
        Block(
            "p",
            "CSV tables: "
            + ", ".join(f for f in REPORT_FILES if f.endswith(".csv"))
            + " (missing values are empty).",
        )
    )
    return blocks


def _table_blocks(analysis: Analysis, tables, level: str) -> list[Block]:
    blocks = []
    for table in tables:
        rows = analysis.tables[table.name]
        if table.heading is None or (table.optional and not rows):
            continue
        blocks.append(Block(level, table.heading))
        note = table.note
        k = rows[0].get("tests_in_table") if rows else None
        if k is not None:
            note += (" " if note else "") + (
                f"{k} tests in this table; p_holm / p_bh: Holm and Benjamini-Hochberg adjusted"
                " p-values (statsmodels' multipletests) beside the raw ones."
            )
        if note:
            blocks.append(Block("p", note))
        blocks.append(table_block(rows))
    return blocks


def write_report(
    analysis: Analysis, out_dir: Path, header: Sequence[str] = (), plots: bool = True
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("plot_*.png"), *(out_dir / f for f in REPORT_FILES)]:
        old.unlink(missing_ok=True)
    a = analysis
    for table in TABLES:
        write_csv(out_dir / table.csv_file, a.tables[table.name])
    images = make_plots(a, out_dir) + difficulty_plots(a, out_dir) if plots else []
    blocks = report_blocks(a, images, header)
    (out_dir / "report.md").write_text(render_markdown(blocks))
    (out_dir / "report.html").write_text(render_html(blocks, out_dir, "xscale sweep analysis"))
    return out_dir
