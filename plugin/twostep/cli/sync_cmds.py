"""twostep sync: end bypasses on time, repair drift, enforce the policy (once, or --watch)."""

from __future__ import annotations

from pathlib import Path

import click

from twostep.sync.apply import Summary
from twostep.sync.plan import Options, State
from twostep.sync.reconcile import run_once
from twostep.sync.watch import watch

from .. import logs, metrics
from ..actor import actor_from_settings
from ..audit import AuditSink
from ..errors import InvalidInput, KeycloakUnavailable, TwostepError
from ..keycloak_adapter import KeycloakClient
from ..lock import lease_seconds
from .common import App, app, audit_sink, emit_json, json_option, realm_options

_log = logs.get("twostep.sync")


def _print(summary: Summary, as_json: bool) -> None:
    if as_json:
        emit_json(summary.as_dict())
        return
    s = summary
    head = "sync (dry run)" if s.dry_run else "sync"
    click.echo(f"{head}: expired {s.expired}, ended early {s.ended_early}, "
               f"drift repaired {s.drift_repaired}, "
               f"finished {s.finished}, enforced {s.enforced}, reminded {s.reminded}, "
               f"handled by another run {s.handled_elsewhere}, "
               f"active bypasses {s.bypassed_active}, "
               f"next expiry {app().when(s.next_expiry) if s.next_expiry else '-'}")
    for a in s.actions:
        click.echo(f"  {'would ' if s.dry_run else ''}{a['kind']} {a['target']}: {a['detail']}")
    for w in s.warnings:
        click.echo(f"  warning: {w}", err=True)
    for e in s.errors:
        click.echo(f"  error: {e}", err=True)


@click.command()
@realm_options
@click.option("--once", "mode", flag_value="once", default=True,
              help="One pass, then exit (default; for cron).")
@click.option("--watch", "mode", flag_value="watch",
              help="Keep running; end each bypass within ~1 s of its time.")
@click.option("--max-sleep", type=click.FloatRange(0.2, 3600), default=30.0, show_default=True,
              help="--watch: longest sleep between passes (new bypasses are seen within this).")
@click.option("--full-every", type=click.FloatRange(1, 86400), default=300.0, show_default=True,
              help="--watch: seconds between full passes (definitions, groups, enforcement).")
@click.option("--end-sessions/--keep-sessions", "end_sessions", default=True, show_default=True,
              help="End the sessions opened while an expired bypass was active.")
@click.option("--end-early/--no-end-early", "end_early", default=True, show_default=True,
              help="End a bypass once the user enrolled a new OTP device after the grant.")
@click.option("--enforce/--no-enforce", "enforce", default=True, show_default=True,
              help="Require OTP setup from users in scope whose grace period is over.")
@click.option("--enforce-limit", type=click.IntRange(1, 10_000_000), default=10_000, show_default=True,
              help="Users the enforcement pass changes per run (the rest next run).")
@click.option("--remind", is_flag=True,
              help="E-mail users in their grace period who have no second factor yet (run it once a day).")
@click.option("--textfile", metavar="PATH",
              help="Write Prometheus metrics (textfile collector) to PATH after each pass, atomically.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="N",
              help="--watch: serve Prometheus metrics on http://HOST:N/metrics.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="--watch: address for --metrics-port (loopback unless you mean it).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@json_option
def sync(mode: str, max_sleep: float, full_every: float, end_sessions: bool, end_early: bool, enforce: bool,
         enforce_limit: int, remind: bool, textfile: str | None, metrics_port: int | None, metrics_host: str,
         dry_run: bool, as_json: bool) -> None:
    """Re-enable expired bypasses, repair drift, enforce the policy."""
    if textfile and not Path(textfile).parent.is_dir():
        raise InvalidInput(f"--textfile {textfile}: directory {Path(textfile).parent} does not exist")
    if mode == "watch" and dry_run:
        raise InvalidInput("--dry-run goes with --once")
    if metrics_port is not None and mode != "watch":
        raise InvalidInput("--metrics-port goes with --watch (use --textfile with --once)")
    if textfile:
        metrics.load_textfile(textfile)
    a = app()
    kc = a.client()
    audit = audit_sink(a.settings)
    actor = actor_from_settings(a.settings, kc.realm, via="sync").name
    if remind and mode == "watch":
        raise InvalidInput("--remind goes with --once (a daily run: each pass would e-mail again)")
    options = Options(end_sessions=end_sessions, end_early=end_early, enforce=enforce,
                      enforce_limit=enforce_limit, remind=remind)
    if mode == "watch":
        if metrics_port is not None:
            try:
                metrics.serve(metrics_port, metrics_host)
            except OSError as exc:
                raise InvalidInput(f"--metrics-port {metrics_port}: cannot listen on {metrics_host} "
                                   f"({exc.strerror})") from None
            _log.info("sync.metrics", f"serving metrics on http://{metrics_host}:{metrics_port}/metrics",
                      host=metrics_host, port=metrics_port)
        _watch(a, kc, audit, actor, options, max_sleep, full_every, textfile, as_json)
        return
    try:
        summary, _ = run_once(kc, a.clock(), audit, actor, lease_seconds(a.settings), options, dry_run)
    finally:
        if textfile and not dry_run:
            metrics.write_textfile(textfile)
    _print(summary, as_json)
    if not summary.ok:
        first = summary.errors[0]
        msg = f"sync incomplete: {len(summary.errors)} action(s) failed; first: {first}"
        if summary.aborted:
            raise KeycloakUnavailable(msg + " (stopped; the next run resumes)")
        raise TwostepError(msg)


def _watch(a: App, kc: KeycloakClient, audit: AuditSink, actor: str, options: Options, max_sleep: float,
           full_every: float, textfile: str | None, as_json: bool) -> None:
    from dataclasses import replace

    def run(full: bool) -> tuple[Summary, State | None]:
        opts = replace(options, full=full, enforce=options.enforce and full)
        result: tuple[Summary, State | None] = run_once(kc, a.clock(), audit, actor,
                                                        lease_seconds(a.settings), opts)
        return result

    def report(summary: Summary | None, error: str | None) -> None:
        if textfile:
            metrics.write_textfile(textfile)
        if error is not None:
            click.echo(f"twostep: sync: {error} (retrying)", err=True)
            return
        assert summary is not None
        if summary.actions or summary.errors:
            _print(summary, as_json)

    watch(run, a.clock, max_sleep, full_every, report)
