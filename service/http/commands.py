"""The commands that run or guard the service: `serve`, `keys create|list|revoke`, `mcp`."""

from __future__ import annotations

import asyncio

import click

from indexer.cli_context import AppContext, emit_json, open_index, pass_app, reports_errors

__all__ = ["COMMANDS"]


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", default=None, help="Address to bind (default RAGSEARCH_HOST or 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port (default 8000, or RAGSEARCH_PORT).",
)
@click.option(
    "--allow-open",
    is_flag=True,
    help="Bind beyond localhost even though no API key exists (anyone who can reach it may "
    "read and write).",
)
@pass_app
@reports_errors
def serve_command(app: AppContext, host: str | None, port: int | None, allow_open: bool) -> None:
    """Run the HTTP service (search, answer, collections, documents; API docs at /docs).

    Once any API key exists every route but /healthz, /docs, /openapi.json, the widget's
    own files and the console's page needs `Authorization: Bearer <key>`.
    With no key the service is open, so it binds to localhost only unless --allow-open.
    """
    import uvicorn

    from indexer.errors import InputError
    from service.http.app import create_app
    from service.http.auth import has_active_keys

    settings = app.settings
    bind_host = host or settings.host
    bind_port = port or settings.port
    with open_index(settings, writer=False) as index:
        keyed = has_active_keys(index.catalog)
    local = _is_loopback(bind_host)
    may_open = allow_open or settings.allow_open_remote
    if keyed:
        click.echo("note: API keys are required (manage them with `ragsearch keys`)", err=True)
    elif local:
        click.echo(
            "note: no API key exists, so the service is open to local clients; "
            "create one with `ragsearch keys create`",
            err=True,
        )
    elif may_open:
        click.echo(
            f"warning: no API key exists and the service binds to {bind_host}: anyone who can "
            "reach it may read and write",
            err=True,
        )
    else:
        raise InputError(
            f"no API key exists, so refusing to bind to {bind_host}; create a key with "
            "`ragsearch keys create`, bind to 127.0.0.1, or pass --allow-open"
        )
    # Bound beyond localhost without --allow-open: if every key is later revoked, refuse
    # requests instead of silently becoming open.
    service = create_app(settings, open_without_keys=local or may_open)
    uvicorn.run(service, host=bind_host, port=bind_port)


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys (stored hashed; shown once at creation)."""


@keys_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(["read", "write", "admin", "documents"]),
    help="Scope (repeatable; default read). admin implies write, write implies read; "
    "documents (whole-document answers) implies read.",
)
@click.option(
    "-c",
    "--collection",
    "collections",
    multiple=True,
    help="Limit the key to this collection (repeatable; default all).",
)
@click.option(
    "--widget",
    is_flag=True,
    help="A public key for the chat widget: read only, one --collection, --origin required.",
)
@click.option("--origin", "origins", multiple=True, help="Allowed browser origin (widget keys).")
@click.option("--rate", type=float, default=None, help="Requests per minute (widget default 30).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def keys_create(
    app: AppContext,
    name: str,
    scopes: tuple[str, ...],
    collections: tuple[str, ...],
    widget: bool,
    origins: tuple[str, ...],
    rate: float | None,
    as_json: bool,
) -> None:
    """Create key NAME and print it. It is shown only now; store it safely."""
    from indexer.errors import InputError
    from service.http.auth import create_key

    if widget:
        if scopes and set(scopes) != {"read"}:
            raise InputError("a widget key has the read scope only")
        if len(collections) != 1 or not origins:
            raise InputError("a widget key needs exactly one --collection and an --origin")
        rate = 30.0 if rate is None else rate
    elif origins:
        raise InputError("--origin is for widget keys; add --widget")
    with open_index(app.settings, writer=False) as index:
        if collections:
            for collection in collections:
                index.catalog.get_collection(collection)
        secret, key = create_key(
            index.catalog,
            name,
            scopes or ("read",),
            collections=collections or None,
            allowed_origins=origins,
            rate_per_minute=rate,
        )
    if as_json:
        emit_json({**key.as_dict(), "key": secret})
        return
    click.echo(secret)
    click.echo(
        f"created {'widget ' if key.is_widget else ''}key {key.name!r} "
        f"(scopes: {', '.join(key.scopes)}; "
        f"collections: {', '.join(key.collections) if key.collections else 'all'}); "
        "it is not shown again",
        err=True,
    )


@keys_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def keys_list(app: AppContext, show_all: bool, as_json: bool) -> None:
    """API keys (never their secrets): name, prefix, scopes, collections, limits."""
    from service.http.auth import list_keys

    with open_index(app.settings, writer=False) as index:
        found = [k for k in list_keys(index.catalog) if show_all or k.revoked_at is None]
    if as_json:
        emit_json({"keys": [k.as_dict() for k in found]})
        return
    if not found:
        click.echo("no keys (the service is open to local clients)", err=True)
    for k in found:
        where = ",".join(k.collections) if k.collections else "*"
        extra = f"\torigins={','.join(k.allowed_origins)}" if k.allowed_origins else ""
        rate = f"\trate={k.rate_per_minute:g}/min" if k.rate_per_minute else ""
        revoked = f"\trevoked {k.revoked_at}" if k.revoked_at else ""
        scopes = ",".join(k.scopes)
        click.echo(f"{k.id}\t{k.name}\t{k.prefix}…\t{scopes}\t{where}{extra}{rate}{revoked}")


@keys_group.command("revoke")
@click.argument("key")
@pass_app
@reports_errors
def keys_revoke(app: AppContext, key: str) -> None:
    """Revoke KEY: its id, name or prefix as `keys list` shows them. Takes effect at once."""
    from service.http.auth import revoke_key

    with open_index(app.settings, writer=False) as index:
        revoked = revoke_key(index.catalog, key)
    for k in revoked:
        click.echo(f"revoked key {k.id} {k.name!r} ({k.prefix}…)")


@click.command("mcp")
@pass_app
@reports_errors
def mcp_command(app: AppContext) -> None:
    """Serve the MCP tools (search, answer, list_collections) over stdio.

    For MCP clients that start a local process; the HTTP server offers the same tools at /mcp.
    """
    from service.http.mcp_server import serve_stdio

    asyncio.run(serve_stdio(app.settings))


COMMANDS: tuple[click.Command, ...] = (serve_command, keys_group, mcp_command)
