"""Entry point: parse, dispatch, and turn every failure into one line and a non-zero exit."""

from __future__ import annotations

import os
import sys

import click

from .. import logs
from ..errors import TwostepError
from .bypass_cmds import bypass
from .codes_cmds import codes
from .common import App
from .demo_cmds import demo
from .help_cmds import help_group
from .otp_cmds import otp
from .policy_cmds import doctor, setup, status, teardown
from .report_cmds import report
from .sync_cmds import sync
from .theme_cmds import theme
from .web_cmds import web


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_file", metavar="FILE", help="TOML settings file (else $TWOSTEP_CONFIG).")
@click.option("--realm", metavar="R", help="Realm to act on (else $TWOSTEP_REALM).")
@click.option("--log-format", type=click.Choice(logs.FORMATS), envvar="TWOSTEP_LOG_FORMAT",
              help="Logs on stderr: json (one event per line) or text. Default: text on a terminal, else json.")
@click.version_option(package_name="keycloak-twostep")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, realm: str | None, log_format: str | None) -> None:
    """Two-step authentication on Keycloak: policy, bypass, backup codes, devices."""
    try:
        logs.configure(log_format)
    except ValueError as exc:  # a bad TWOSTEP_LOG_LEVEL
        raise click.UsageError(str(exc)) from None
    obj = ctx.ensure_object(App)
    obj.config_file = config_file
    obj.realm = realm


for command in (setup, teardown, status, doctor, codes, otp, bypass, help_group, sync, demo, web, theme, report):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    try:
        # Without standalone mode click returns the code of a command's Exit instead of exiting.
        rv = cli.main(args=argv, prog_name="twostep", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except TwostepError as exc:
        click.echo(f"twostep: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("twostep: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("twostep: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("TWOSTEP_DEBUG"):
            raise
        click.echo(f"twostep: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                   " (set TWOSTEP_DEBUG=1 for details)", err=True)
        sys.exit(70)
