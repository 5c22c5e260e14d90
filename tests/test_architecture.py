"""Dependencies go one way, and the ingestion CLI stays light to import.

The layers, top to bottom: the interfaces (`service.cli`, the app, routes, OpenAI chat, MCP, the
widget) → their shared plumbing (`service.http.deps`, auth, errors, metrics, middleware,
schemas) → the query pipeline (`service.query`) → `indexer`. Nothing imports upwards, and the
query pipeline never sees the web stack.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INDEXER_MODULES = sorted((ROOT / "indexer").rglob("*.py"))
QUERY_MODULES = sorted((ROOT / "service" / "query").rglob("*.py"))
HTTP_MODULES = sorted((ROOT / "service" / "http").rglob("*.py"))
INTERFACES = (
    "service.cli",
    "service.http.commands",
    "service.http.app",
    "service.http.routes",
    "service.http.openai_api",
    "service.http.tools",
    "service.http.mcp_server",
    "service.http.widget",
    "service.http.console",
)
WEB_STACK = ("fastapi", "starlette", "uvicorn", "mcp")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Dotted names a module imports, wherever the import statement sits; relative ones resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def imported_roots(path: Path) -> set[str]:
    """Top-level package names a module imports."""
    return {name.split(".")[0] for name in imported_modules(path)}


def is_within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def ids(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_architecture_scan_sees_every_layer() -> None:
    names = {ids(p) for p in [*INDEXER_MODULES, *QUERY_MODULES, *HTTP_MODULES]}
    assert {"indexer/cli.py", "indexer/ingest.py", "indexer/vectors/faiss_store.py"} <= names
    assert {"service/query/search.py", "service/http/app.py", "service/http/deps.py"} <= names
    assert "indexer" in imported_roots(ROOT / "indexer" / "ingest.py")
    assert "fastapi" in imported_roots(ROOT / "service" / "http" / "app.py")
    assert "service.query.engine" in imported_modules(ROOT / "service" / "http" / "deps.py")


@pytest.mark.parametrize("path", INDEXER_MODULES, ids=ids)
def test_architecture_indexer_never_imports_service(path: Path) -> None:
    assert "service" not in imported_roots(path)


@pytest.mark.parametrize("path", QUERY_MODULES, ids=ids)
def test_architecture_query_never_imports_web_stack_or_interfaces(path: Path) -> None:
    upward = {n for n in imported_modules(path) if is_within(n, ("service.http", "service.cli"))}
    assert upward == set()
    assert imported_roots(path).isdisjoint(WEB_STACK)


@pytest.mark.parametrize(
    "path", [p for p in HTTP_MODULES if not is_within(module_name(p), INTERFACES)], ids=ids
)
def test_architecture_http_plumbing_never_imports_interfaces(path: Path) -> None:
    assert {n for n in imported_modules(path) if is_within(n, INTERFACES)} == set()


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


def test_architecture_cli_is_assembled_in_one_function() -> None:
    from indexer import cli as indexer_cli
    from service.cli import build_cli

    built = build_cli()

    service_commands = {"search", "ask", "show", "eval", "serve", "keys", "mcp"}
    assert set(built.commands) == {c.name for c in indexer_cli.COMMANDS} | service_commands
    assert build_cli() is not built  # nothing registered on a shared group at import
    assert not hasattr(indexer_cli, "main")
