"""The command line: `monitor COMMAND`, also `python -m monitor COMMAND`.

Every command takes `--config PATH` before or after its name. A MonitorError becomes one line
on stderr and the exit code the spec gives; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.config import Settings, load_settings
from monitor.errors import ConfigErrors, MonitorError

F = TypeVar("F", bound=Callable[..., Any])


def _config_option(fn: F) -> F:
    """Let --config be given after the command name as well as before it."""

    def wrapper(ctx: click.Context, /, config_path: Path | None, **kwargs: Any) -> Any:
        if config_path is not None:
            ctx.obj["config_path"] = config_path
        return ctx.invoke(fn, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    decorated = click.pass_context(wrapper)
    decorated = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="config file (default ./config.toml or $MONITOR_CONFIG)",
    )(decorated)
    return decorated  # type: ignore[return-value]


def config_path(ctx: click.Context) -> Path:
    """The config file named on the command line, in $MONITOR_CONFIG, or ./config.toml."""
    given = ctx.find_root().obj.get("config_path")
    return Path(given or os.environ.get("MONITOR_CONFIG") or "config.toml")


def settings(ctx: click.Context) -> Settings:
    """Load the config once per command."""
    obj = ctx.find_root().obj
    if "settings" not in obj:
        obj["settings"] = load_settings(config_path(ctx))
    loaded: Settings = obj["settings"]
    return loaded


class _Group(click.Group):
    """Turns MonitorError into one line on stderr and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigErrors as exc:
            for error in exc.errors:
                click.echo(str(error), err=True)
            sys.exit(exc.exit_code)
        except MonitorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="config file (default ./config.toml or $MONITOR_CONFIG)",
)
@click.version_option(package_name="monitor")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Watch news feeds for a subject and email a daily digest of what matched."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@cli.command()
@_config_option
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config and every watchlist; print each problem as FILE:LINE: message."""
    loaded = settings(ctx)
    click.echo(f"{config_path(ctx)}: ok, {len(loaded.feeds)} feeds")


def main() -> None:
    """Entry point of the `monitor` script."""
    cli(prog_name="monitor")
