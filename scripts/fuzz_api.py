"""Schemathesis against the running service: open, then with an admin key.

Starts the real app under uvicorn on 127.0.0.1 over a fresh data directory (a hashing
collection `docs` with three documents), runs `schemathesis run` with every check and a
bounded number of examples per operation, and prints the failures found by kind, as JSON:

    python scripts/fuzz_api.py --max-examples 25 [--port 18900] [--seed 1]

Exit status 1 when any server error (5xx) or schema violation was found. Other findings
are listed too: in open mode schemathesis counts every keyless success against the declared
bearer scheme (`ignored_auth`, `missing_required_header`); `positive_data_acceptance` marks
requests the schema allows but the service refuses on meaning (an empty query after trimming,
a chat without a user message, Zhipu without a server key).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from indexer.index import Index
from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import create_key

SEED_DOCUMENTS = {
    "guide.md": "# Operator guide\n\nStop writers before copying the data directory.",
    "notes.txt": "Incident notes for ticket PPR-9087 after upgrading the parser to v2.3.1.",
    "chinese.md": "# 检索增强生成\n\n检索增强生成是一种把搜索和大语言模型结合起来的方法。",
}
# Failures that mean the service broke its contract (the "done when").
SERVER_ERRORS = {"not_a_server_error"}
SCHEMA_VIOLATIONS = {
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
}


@contextmanager
def serving(settings: Settings, port: int) -> Iterator[str]:
    """The app under uvicorn in a thread; yields its base URL."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def seed(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
        for name, text in SEED_DOCUMENTS.items():
            client.post("/v1/collections/docs/documents", json={"source": name, "text": text})


def admin_key(settings: Settings) -> str:
    index = Index(settings)
    try:
        secret, _ = create_key(index.catalog, "fuzz-admin", ["admin"])
    finally:
        index.close()
    return secret


def run_schemathesis(
    url: str, report: Path, max_examples: int, seed_value: int, headers: list[str]
) -> dict[str, Any]:
    """Run every check; returns the summary of schemathesis's NDJSON events."""
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed_value),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--no-color",
        *(arg for header in headers for arg in ("-H", header)),
    ]
    subprocess.run(command, check=False, stdout=sys.stderr)
    return {**summarize(failures(report)), "cases": count_cases(report)}


def count_cases(report: Path) -> int:
    """Test cases schemathesis sent (every scenario's recorded cases)."""
    total = 0
    for line in report.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished:
            total += len((finished.get("recorder") or {}).get("cases") or {})
    return total


def failures(report: Path) -> list[dict[str, Any]]:
    """(check name, operation, status) for each distinct failure in the NDJSON report."""
    found: list[dict[str, Any]] = []
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished.get("recorder") or {}
        label = recorder.get("label", "?")
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                if str(check.get("status", "")).lower() == "failure":
                    found.append({"check": check.get("name"), "operation": label})
    unique = {(f["check"], f["operation"]) for f in found}
    return [{"check": c, "operation": o} for c, o in sorted(unique)]


def summarize(found: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = Counter(f["check"] for f in found)
    return {
        "server_errors": sum(n for k, n in kinds.items() if k in SERVER_ERRORS),
        "schema_violations": sum(n for k, n in kinds.items() if k in SCHEMA_VIOLATIONS),
        "other_findings": {
            k: n for k, n in kinds.items() if k not in SERVER_ERRORS | SCHEMA_VIOLATIONS
        },
        "failures": found,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reports", type=Path, default=None, help="Keep NDJSON reports here.")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        reports = args.reports or Path(tmp)
        reports.mkdir(parents=True, exist_ok=True)
        settings = Settings(data_dir=Path(tmp) / "data")  # type: ignore[call-arg]
        with serving(settings, args.port) as url:
            seed(url)
            started = time.monotonic()
            results["open"] = run_schemathesis(
                url, reports / "open.ndjson", args.max_examples, args.seed, []
            )
            results["open"]["seconds"] = round(time.monotonic() - started, 1)
            key = admin_key(settings)
            started = time.monotonic()
            results["admin_key"] = run_schemathesis(
                url,
                reports / "admin.ndjson",
                args.max_examples,
                args.seed,
                [f"Authorization: Bearer {key}"],
            )
            results["admin_key"]["seconds"] = round(time.monotonic() - started, 1)
    results["max_examples"] = args.max_examples
    print(json.dumps(results, indent=2))
    broken = sum(
        r["server_errors"] + r["schema_violations"] for r in results.values() if isinstance(r, dict)
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
