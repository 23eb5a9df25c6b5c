"""The overview's lists as CSV: /admin/export/not-enrolled.csv, overdue.csv, bypassed.csv. Streamed:
rows are written while Keycloak is read page by page (report.rows), with the signed-in admin's own
token, so Keycloak's permissions decide as on every admin page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, stream_with_context

from .. import report
from ..keycloak_adapter import KeycloakClient
from . import i18n
from .auth import admin_required, state

bp = Blueprint("export", __name__, url_prefix="/admin/export")


@bp.get("/<kind>.csv")
@admin_required
def export_csv(kind: str) -> Any:
    if kind not in report.KINDS:
        abort(404, i18n.gettext("No export %(kind)r: %(kinds)s")
              % {"kind": kind, "kinds": ", ".join(f"{k}.csv" for k in report.KINDS)})
    kc: KeycloakClient = g.kc
    now = state().clock()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    body = stream_with_context(report.csv_lines(kind, report.rows(kc, kind, now)))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{kc.realm}-{kind}-{stamp}.csv"'})
