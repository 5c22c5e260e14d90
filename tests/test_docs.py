"""The README documents every setting, and the commands it promises exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_readme_documents_setting(name: str) -> None:
    field = Settings.model_fields[name]
    assert field.description, f"setting {name} has no description"
    variable = f"RAGSEARCH_{name.upper()}"
    assert variable in README, f"{variable} is not in the README's configuration table"


def test_readme_commands_exist_and_are_executable() -> None:
    for script in (
        "scripts/demo",
        "scripts/test",
        "scripts/check",
        "scripts/setup-browser",
        ".ci/run",
    ):
        path = ROOT / script
        assert path.exists() and path.stat().st_mode & 0o111, (
            f"{script} is missing or not executable"
        )
        assert f"{script}" in README or script == ".ci/run" or script == "scripts/check"


def test_ci_runs_the_readme_test_command_which_sets_up_then_runs_the_one_check() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    check = (ROOT / "scripts" / "check").read_text(encoding="utf-8")

    assert "exec scripts/test" in ci
    assert (
        test.index("scripts/setup ")
        < test.index("scripts/setup-browser")
        < test.index("exec scripts/check")
    )
    for step in ("ruff format --check .", "ruff check .", "mypy indexer service", "pytest"):
        assert step in check
    assert "scripts/check" in README and ".ci/run" in README


def test_dev_tools_are_pinned() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")

    for tool in ("pytest", "ruff", "mypy"):
        assert f'"{tool}==' in pyproject, f"{tool} is not pinned in the test extra"
