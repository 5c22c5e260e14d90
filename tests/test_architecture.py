"""Dependencies go one way (service -> indexer), and the ingestion CLI stays light to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INDEXER_MODULES = sorted((ROOT / "indexer").rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    """Top-level package names a module imports, wherever the import statement sits."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_architecture_scan_sees_every_indexer_module() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in INDEXER_MODULES}
    assert {"indexer/cli.py", "indexer/ingest.py", "indexer/vectors/faiss_store.py"} <= names
    assert "indexer" in imported_roots(ROOT / "indexer" / "ingest.py")


@pytest.mark.parametrize("path", INDEXER_MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_architecture_indexer_never_imports_service(path: Path) -> None:
    assert "service" not in imported_roots(path)


def test_architecture_cli_import_loads_no_web_or_model_stack() -> None:
    heavy = "{'fastapi', 'torch', 'sentence_transformers', 'uvicorn', 'transformers'}"
    code = (
        "import sys, indexer.cli; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert result.stdout.strip() == "[]"
