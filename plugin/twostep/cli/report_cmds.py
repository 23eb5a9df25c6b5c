"""`twostep report not-enrolled|overdue|bypassed [--csv|--json]`: the overview's lists, for export
(twostep.report; the same rows as /admin/export/<kind>.csv), written as Keycloak is read."""

from __future__ import annotations

import click

from .. import report as service
from .common import app, realm_options


@click.command()
@realm_options
@click.argument("kind", type=click.Choice(service.KINDS))
@click.option("--csv", "fmt", flag_value="csv", help="CSV (UTF-8, one header row, ISO-8601 times).")
@click.option("--json", "fmt", flag_value="json", help="A JSON array of objects (ISO-8601 times).")
def report(kind: str, fmt: str | None) -> None:
    """Users in scope not enrolled or overdue, or the bypasses in force, page by page from Keycloak."""
    a = app()
    kc = a.client()
    now = a.clock()
    items = service.rows(kc, kind, now)
    if fmt == "csv":
        for line in service.csv_lines(kind, items):
            click.echo(line, nl=False)
        return
    if fmt == "json":
        for chunk in service.json_chunks(items):
            click.echo(chunk, nl=False)
        return
    columns = service.COLUMNS[kind]
    times = {"deadline": "deadline", "until": "until", "granted_at": "since"}
    shown = 0
    for row in items:
        click.echo("  ".join((a.when(row[c], times[c]) if c in times and row[c] else row[c] or "-")
                             for c in columns if c not in ("user_id", "first_name", "last_name")))
        shown += 1
    click.echo(f"{shown} user(s)" if kind != "bypassed" else f"{shown} bypass(es) in force", err=True)
