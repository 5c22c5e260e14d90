"""Score our parsers' Markdown against docling's expected Markdown, per format.

    PYTHONPATH=. python scripts/score_docling.py [--data DIR] [--files] [--json]

For every source file with a ground truth in `mixed_docs_docling` it parses the file with
`indexer.parsers.parse_bytes` and prints, per format, the mean of:
- heading recall: share of the expected headings found among ours (Markdown `#` lines of our
  text, plus the heading paths of our sections, so text without `#` lines is scored fairly);
- table cells: share of the expected table cells (multiset) found among the cells of our
  table-like lines (lines with `|`), over files whose ground truth has a table;
- text F1: bag-of-words F1 of the visible text (Markdown syntax stripped);
- order: difflib ratio of the two word sequences (reading order; first 4,000 words).
A file that fails to parse scores 0 everywhere. Point PYTHONPATH at another checkout to
score another version of the parsers (that is how the "before" numbers were taken).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from indexer.parsers import parse_bytes

DEFAULT_DATA = Path("/work/shared/datasets/mixed_docs_docling")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_WORD = re.compile(r"\w+", re.UNICODE)
_SEPARATOR_CELL = re.compile(r"^:?-{1,}:?$")
_ORDER_WORDS = 4000


@dataclass(frozen=True, slots=True)
class Score:
    format: str
    file: str
    heading_recall: float | None
    table_cells: float | None
    text_f1: float
    order: float
    seconds: float
    error: str | None = None


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _headings(markdown: str) -> list[str]:
    found = []
    for line in markdown.splitlines():
        match = _HEADING.match(line.strip())
        if match and _norm(match.group(1)):
            found.append(_norm(match.group(1)))
    return found


def _cells(markdown: str) -> Counter[str]:
    cells: Counter[str] = Counter()
    for line in markdown.splitlines():
        if "|" not in line:
            continue
        for cell in line.strip().strip("|").split("|"):
            cell = cell.strip()
            if cell and not _SEPARATOR_CELL.match(cell):
                cells[_norm(cell)] += 1
    return cells


def _words(markdown: str) -> list[str]:
    return _WORD.findall(markdown.lower())


def _f1(ours: list[str], expected: list[str]) -> float:
    a, b = Counter(ours), Counter(expected)
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def _truth_for(source: Path) -> Path:
    truth = source.parent.parent / "groundtruth"
    named = truth / f"{source.name}.md"
    return named if named.exists() else truth / f"{source.stem}.md"


def score_file(fmt: str, source: Path) -> Score | None:
    truth_path = _truth_for(source)
    if not truth_path.exists():
        return None
    truth = truth_path.read_text(encoding="utf-8")
    expected_headings = _headings(truth)
    expected_cells = _cells(truth)
    started = time.perf_counter()
    try:
        doc = parse_bytes(source.read_bytes(), source.name)
    except Exception as exc:  # a failure is a score of zero, reported with its reason
        return Score(
            fmt,
            source.name,
            0.0 if expected_headings else None,
            0.0 if expected_cells else None,
            0.0,
            0.0,
            time.perf_counter() - started,
            f"{type(exc).__name__}: {exc}",
        )
    seconds = time.perf_counter() - started
    ours_headings = set(_headings(doc.text))
    for section in doc.sections:
        ours_headings.update(_norm(h) for h in section.heading_path)
    heading_recall = None
    if expected_headings:
        heading_recall = sum(h in ours_headings for h in expected_headings) / len(expected_headings)
    table_cells = None
    if expected_cells:
        ours_cells = _cells(doc.text)
        table_cells = sum((ours_cells & expected_cells).values()) / sum(expected_cells.values())
    ours_words, truth_words = _words(doc.text), _words(truth)
    order = difflib.SequenceMatcher(
        None, ours_words[:_ORDER_WORDS], truth_words[:_ORDER_WORDS], autojunk=False
    ).ratio()
    return Score(
        fmt,
        source.name,
        heading_recall,
        table_cells,
        _f1(ours_words, truth_words),
        order,
        seconds,
    )


def _mean(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.fmean(present):.2f}" if present else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--files", action="store_true", help="also print one line per file")
    parser.add_argument("--json", action="store_true", help="print every score as JSON")
    args = parser.parse_args()
    scores: list[Score] = []
    for folder in sorted(p for p in args.data.iterdir() if (p / "sources").is_dir()):
        for source in sorted((folder / "sources").iterdir()):
            score = score_file(folder.name, source)
            if score is not None:
                scores.append(score)
    if args.json:
        print(json.dumps([asdict(s) for s in scores], indent=1))
        return 0
    header = "| format | files | failed | heading recall | table cells | text F1 | order | s |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for fmt in sorted({s.format for s in scores}):
        group = [s for s in scores if s.format == fmt]
        print(
            f"| {fmt} | {len(group)} | {sum(s.error is not None for s in group)} "
            f"| {_mean([s.heading_recall for s in group])} "
            f"| {_mean([s.table_cells for s in group])} "
            f"| {_mean([s.text_f1 for s in group])} | {_mean([s.order for s in group])} "
            f"| {sum(s.seconds for s in group):.2f} |"
        )
    print(
        f"| all | {len(scores)} | {sum(s.error is not None for s in scores)} "
        f"| {_mean([s.heading_recall for s in scores])} "
        f"| {_mean([s.table_cells for s in scores])} "
        f"| {_mean([s.text_f1 for s in scores])} | {_mean([s.order for s in scores])} "
        f"| {sum(s.seconds for s in scores):.2f} |"
    )
    if args.files:
        for s in scores:
            print(
                f"{s.format:9} {s.file:45} h={s.heading_recall} t={s.table_cells} "
                f"f1={s.text_f1:.2f} ord={s.order:.2f} {s.error or ''}",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
