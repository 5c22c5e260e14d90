"""Answer quality: does ragsearch decline what the knowledge base does not hold?

Three knowledge bases from `/work/shared/datasets`, each with on-topic questions (and the
sources that hold their answer) and off-topic questions of many kinds (general knowledge,
recipes, other domains, near-misses sharing the knowledge base's vocabulary), in English and
Chinese:

- `fastapi`: the FastAPI docs, English and Chinese pages; hand-written questions in
  `scripts/answer_eval/fastapi.jsonl` (a third of them marked `held`: never tuned on).
- `scifact`: 500 SciFact abstracts; on-topic = SciFact claims whose evidence is among them;
  off-topic = the general English questions, the FastAPI English questions and biomedical
  near-misses SciFact does not answer (`scripts/answer_eval/near_misses.jsonl`).
- `cmrc`: the CMRC 2018 Chinese Wikipedia passages; on-topic = CMRC questions;
  off-topic = the general Chinese questions, the FastAPI Chinese questions and Chinese
  general-knowledge near-misses the passages do not answer (`near_misses.jsonl`).

For each question the real answer path runs (the embedded extractive answerer, no key) and
the script prints, per knowledge base, language and split: the share of off-topic questions
declined (`grounded: false`) and the share of on-topic ones answered from a right source
(grounded, and a cited source is one that holds the answer). Collections are built once in
DATA_DIR and reused.

    python scripts/eval_answers.py [--data-dir /tmp/rs-answer-eval] [--kb fastapi,cmrc]
        [--split held|dev|all] [--signals signals.jsonl] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.collections import ensure_collection  # noqa: E402
from indexer.ingest import Ingestor, SourceItem  # noqa: E402
from indexer.settings import Settings  # noqa: E402

try:
    from service.query.engine import Engine
    from service.query.records import AnswerRequest
except ImportError:  # the layout before issue 15, to measure "before"
    from service.engine import Engine  # type: ignore[no-redef]
    from service.records import AnswerRequest  # type: ignore[no-redef]

DATASETS = Path("/work/shared/datasets")
DEVSET = ROOT / "scripts" / "answer_eval" / "fastapi.jsonl"
NEAR_MISSES = ROOT / "scripts" / "answer_eval" / "near_misses.jsonl"
SCIFACT_DOCS = 500
SCIFACT_CLAIMS = 60
CMRC_QUESTIONS = 60


@dataclass(frozen=True, slots=True)
class Question:
    kb: str
    text: str
    lang: str
    kind: str  # "on" or "off"
    sources: tuple[str, ...]  # sources that hold the answer (on-topic only)
    split: str  # "dev" or "held"


def split_of(text: str) -> str:
    return "held" if zlib.crc32(text.encode()) % 3 == 0 else "dev"


def fastapi_questions() -> list[dict[str, Any]]:
    with DEVSET.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def near_misses(kb: str) -> list[Question]:
    """Off-topic questions in the knowledge base's own domain (split by hash, like the rest)."""
    with NEAR_MISSES.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [
        Question(kb, r["q"], r["lang"], "off", (), split_of(r["q"])) for r in rows if r["kb"] == kb
    ]


def questions(kb: str) -> list[Question]:
    rows = fastapi_questions()
    if kb == "fastapi":
        return [
            Question(kb, r["q"], r["lang"], r["kind"], tuple(r["sources"]), r["split"])
            for r in rows
        ]
    if kb == "scifact":
        claims = [
            Question(kb, text, "en", "on", tuple(f"scifact:{d}" for d in docs), split_of(text))
            for text, docs in _scifact_claims()
        ]
        others = [r for r in rows if r["lang"] == "en"]
        off = [Question(kb, r["q"], "en", "off", (), r["split"]) for r in others]
        return claims + off + near_misses(kb)
    if kb == "cmrc":
        on = [
            Question(kb, text, "zh", "on", (f"cmrc:{context}",), split_of(text))
            for text, context in _cmrc_questions()
        ]
        others = [r for r in rows if r["lang"] == "zh"]
        off = [Question(kb, r["q"], "zh", "off", (), r["split"]) for r in others]
        return on + off + near_misses(kb)
    raise SystemExit(f"unknown knowledge base {kb!r}")


def _scifact_claims() -> list[tuple[str, list[str]]]:
    qrels: dict[str, list[str]] = defaultdict(list)
    with (DATASETS / "scifact" / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, doc, _ = line.rstrip("\n").split("\t")
            qrels[qid].append(doc)
    texts = {}
    with (DATASETS / "scifact" / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            texts[record["_id"]] = record["text"]
    chosen = sorted(qrels, key=int)[:SCIFACT_CLAIMS]
    return [(texts[q], qrels[q]) for q in chosen]


def _cmrc_questions() -> list[tuple[str, str]]:
    out = []
    with (DATASETS / "cmrc2018_zh" / "qa_dev.jsonl").open(encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i % 50 == 0:
                record = json.loads(line)
                out.append((record["question"], record["context_id"]))
    return out[:CMRC_QUESTIONS]


# --- knowledge bases ----------------------------------------------------------------------


def kb_items(kb: str) -> Iterator[SourceItem]:
    if kb == "fastapi":
        base = DATASETS / "fastapi_docs_en_zh"
        for lang in ("en", "zh"):
            for path in sorted((base / lang / "docs").rglob("*.md")):
                rel = path.relative_to(base / lang / "docs").as_posix()
                yield SourceItem(f"{lang}/{rel}", path.name, path=path)
    elif kb == "scifact":
        wanted = {d for _, docs in _scifact_claims() for d in docs}
        with (DATASETS / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                record = json.loads(line)
                if record["_id"] in wanted or i < SCIFACT_DOCS - len(wanted):
                    yield _markdown_item(f"scifact:{record['_id']}", record)
    elif kb == "cmrc":
        with (DATASETS / "cmrc2018_zh" / "corpus.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                yield _markdown_item(f"cmrc:{record['_id']}", record)


def _markdown_item(source: str, record: dict[str, Any]) -> SourceItem:
    title = (record.get("title") or "").strip()
    text = f"# {title}\n\n{record['text']}" if title else record["text"]
    return SourceItem(source, "doc.md", data=text.encode("utf-8"))


async def build(engine: Engine, settings: Settings, kb: str) -> None:
    from indexer.cli import writing

    with writing(settings) as index:
        target = ensure_collection(index, engine.embedders, kb)
        ingestor = Ingestor(index, target, engine.embedders.for_collection(target))
        report = await ingestor.run(kb_items(kb))  # unchanged documents are skipped
        if report.added:
            print(f"{kb}: {report.added} documents ingested", file=sys.stderr)


# --- evaluation ---------------------------------------------------------------------------


def right_source(question: Question, cited: list[str]) -> bool:
    """A cited source holds the answer (FastAPI pages count in either language)."""
    for source in cited:
        if question.kb == "fastapi":
            if source.split("/", 1)[-1] in question.sources:
                return True
        elif source in question.sources:
            return True
    return False


async def ask(engine: Engine, question: Question) -> dict[str, Any]:
    request = AnswerRequest(query=question.text, collection=question.kb, model="extractive")
    body = await engine.answer(request)
    body = body if isinstance(body, dict) else body.as_dict()
    cited = [c["source"] for c in body["citations"]]
    return {
        "kb": question.kb,
        "q": question.text,
        "lang": question.lang,
        "kind": question.kind,
        "split": question.split,
        "grounded": bool(body["grounded"]),
        "right": bool(body["grounded"]) and right_source(question, cited),
        "gate": body.get("gate"),
        "top": body["sources"][0]["source"] if body.get("sources") else None,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        for split in ("", f" {row['split']}"):
            groups[f"{row['kb']} {row['lang']}{split}"].append(row)
            groups[f"all {row['lang']}{split}"].append(row)
    out = {}
    for name, members in sorted(groups.items()):
        off = [r for r in members if r["kind"] == "off"]
        on = [r for r in members if r["kind"] == "on"]
        out[name] = {
            "off_topic": len(off),
            "declined": sum(not r["grounded"] for r in off) / len(off) if off else None,
            "on_topic": len(on),
            "right_source": sum(r["right"] for r in on) / len(on) if on else None,
        }
    return out


def print_table(summary: dict[str, dict[str, Any]], split: str) -> None:
    print(f"split: {split}")
    print(f"{'group':<19} {'off-topic':>9} {'declined':>9} {'on-topic':>9} {'right src':>9}")
    for name, s in summary.items():
        declined = "-" if s["declined"] is None else f"{s['declined']:.1%}"
        right = "-" if s["right_source"] is None else f"{s['right_source']:.1%}"
        print(f"{name:<19} {s['off_topic']:>9} {declined:>9} {s['on_topic']:>9} {right:>9}")


async def run(args: argparse.Namespace) -> None:
    if args.from_signals:
        with open(args.from_signals, encoding="utf-8") as handle:
            print_table(summarise([json.loads(line) for line in handle]), "all")
        return
    settings = Settings(data_dir=args.data_dir, zhipu_api_key=None)
    engine = Engine(settings)
    rows = []
    try:
        for kb in args.kb.split(","):
            if not args.no_build:
                await build(engine, settings, kb)
            for question in questions(kb):
                if args.split in ("all", question.split):
                    rows.append(await ask(engine, question))
    finally:
        await engine.aclose()
    if args.signals:
        with open(args.signals, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = summarise(rows)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary, args.split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rs-answer-eval"))
    parser.add_argument("--kb", default="fastapi,scifact,cmrc")
    parser.add_argument("--split", choices=("dev", "held", "all"), default="all")
    parser.add_argument("--signals", help="Write each question's outcome and gate as JSONL.")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--from-signals", help="Summarise a --signals file written earlier (no questions asked)."
    )
    parser.add_argument(
        "--no-build", action="store_true", help="Use the collections as they are (no ingest)."
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
