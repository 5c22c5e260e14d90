"""What every `ragsearch` command shares: the group, settings, errors, JSON output, the index.

Data goes to stdout (`--json` for machines), progress and errors to stderr. Heavy modules load
inside the commands, so `ragsearch ingest` never loads the web stack.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from indexer.errors import RagsearchError
from indexer.private_files import make_private_dir
from indexer.settings import Settings

if TYPE_CHECKING:
    from indexer.index import Index

__all__ = [
    "AppContext",
    "emit_json",
    "new_group",
    "notice_default",
    "open_index",
    "pass_app",
    "reports_errors",
    "writing",
]

F = TypeVar("F", bound=Callable[..., Any])


class AppContext:
    """What every command gets: settings read once from flags and the environment."""

    def __init__(self, data_dir: Path | None) -> None:
        overrides: dict[str, Any] = {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        self.settings = Settings(**overrides)


pass_app = click.make_pass_decorator(AppContext)


EXIT_CODES = """\b
Exit status:
  0    done
  1    some files failed to ingest (the rest landed), or a confirmation was declined
  2    bad input (usage, JSON, filter, unsupported or unparseable file, too large)
  3    not found (collection, document, key)
  4    conflict, or locked: another writer holds the data directory
  5    unauthorized or forbidden
  6    a model provider failed, or a rate limit was hit
  7    storage failed (the disk is full, or an I/O error); what was committed is kept
  130  interrupted (what was committed is kept)"""


def new_group(commands: Iterable[click.Command]) -> click.Group:
    """The `ragsearch` group (`--data-dir`, `--version`, `--help`) holding `commands`."""

    @click.group(
        context_settings={"help_option_names": ["-h", "--help"]},
        commands=list(commands),
        epilog=EXIT_CODES,
    )
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default ./ragsearch-data, or RAGSEARCH_DATA_DIR).",
    )
    @click.version_option(package_name="ragsearch")
    @click.pass_context
    def ragsearch(ctx: click.Context, data_dir: Path | None) -> None:
        """ragsearch: put documents in, get cited answers out."""
        # pypdf logs every recoverable oddity of a PDF; a file that truly fails is reported.
        logging.getLogger("pypdf").setLevel(logging.ERROR)
        ctx.obj = _app_context(data_dir)

    return ragsearch


def _app_context(data_dir: Path | None) -> AppContext:
    """The settings, or one line per bad setting on stderr and exit 2 (no traceback)."""
    from pydantic import ValidationError

    try:
        return AppContext(data_dir)
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            variable = f"RAGSEARCH_{name.upper()}" if name else "settings"
            click.echo(f"error: {variable}={error['input']!r}: {error['msg']}", err=True)
        sys.exit(2)


def reports_errors(func: F) -> F:
    """Print a RagsearchError as one line on stderr and exit with its code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RagsearchError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: what was committed is kept; run again to finish", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@contextmanager
def open_index(settings: Settings, *, writer: bool) -> Iterator[Index]:
    from indexer.index import Index

    index = Index(settings, writer=writer)
    try:
        yield index
    finally:
        index.close()


@contextmanager
def writing(settings: Settings, operation: str = "write") -> Iterator[Index]:
    """The index opened for writing, under the data directory's writer lock.

    `operation` names the command in the lock file and in a refusal ("cannot delete: ...").
    """
    from indexer.writer_lock import WriterLock

    make_private_dir(settings.data_dir)
    lock = WriterLock(settings.data_dir, operation=operation)
    with lock, open_index(settings, writer=True) as index:
        yield index


def notice_default(settings: Settings) -> None:
    """Say once that, with no Zhipu key, the embedded default model is used."""
    if not settings.has_zhipu_key:
        click.echo(
            "note: no ZHIPUAI_API_KEY set, using the embedded default "
            f"({settings.local_embedding_model}, runs locally)",
            err=True,
        )
