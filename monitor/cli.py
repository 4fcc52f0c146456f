"""The command line: `monitor COMMAND`, also `python -m monitor COMMAND`.

Every command takes `--config PATH` before or after its name. A MonitorError becomes one line
on stderr and the exit code the spec gives; anything else is a bug and keeps its traceback.
Commands live in cli_*.py modules by theme; this module holds the group and shared options.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.config import Settings, load_settings
from monitor.errors import ConfigError, ConfigErrors, MonitorError
from monitor.logs import setup_logging
from monitor.timeutil import parse_since

F = TypeVar("F", bound=Callable[..., Any])


_config = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="config file (default ./config.toml or $MONITOR_CONFIG)",
)


_LOG_FORMAT_HELP = "log lines as text, or as one JSON object each (every feed poll included)"
_VERBOSE_HELP = "log every feed poll, not only problems"


def config_option(fn: F) -> F:
    """Let the global options (--config, --log-format, -v) be given after the command name
    as well as before it."""

    def wrapper(
        ctx: click.Context,
        /,
        config_path: Path | None,
        log_format: str | None,
        verbose: bool,
        **kwargs: Any,
    ) -> Any:
        root = ctx.find_root()
        if config_path is not None:
            root.obj["config_path"] = config_path
        if log_format is not None or verbose:
            root.obj["log_format"] = log_format or root.obj["log_format"]
            root.obj["verbose"] = verbose or root.obj["verbose"]
            _setup_logging(root.obj, ctx.info_name)
        return ctx.invoke(fn, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    options = (
        _config,
        click.option("--log-format", type=click.Choice(["text", "json"]), help=_LOG_FORMAT_HELP),
        click.option("-v", "--verbose", is_flag=True, help=_VERBOSE_HELP),
    )
    command: Any = click.pass_context(wrapper)
    for option in reversed(options):
        command = option(command)
    return command  # type: ignore[no-any-return]


def _setup_logging(obj: dict[str, Any], command: str | None) -> None:
    # the daemon, and JSON (read by a machine), log every feed poll; a person asks with -v
    every = obj["verbose"] or obj["log_format"] == "json" or command == "run"
    setup_logging(obj["log_format"], logging.INFO if every else logging.WARNING)


def config_path(ctx: click.Context) -> Path:
    """The config file named on the command line, in $MONITOR_CONFIG, or ./config.toml."""
    given = ctx.find_root().obj.get("config_path")
    return Path(given or os.environ.get("MONITOR_CONFIG") or "config.toml")


class UsageProblem(MonitorError):
    """A command was given something it cannot use (exit status 2, as for usage errors)."""

    exit_code = 2


class NoConfig(UsageProblem):
    """The config file named (or the default ./config.toml) does not exist."""


def existing_config(ctx: click.Context) -> Path:
    """The config file's path, or NoConfig saying how to name one."""
    path = config_path(ctx)
    if path.is_dir():
        raise NoConfig(f"{path} is a folder, not a config file; pass --config PATH/config.toml")
    if not path.is_file():
        raise NoConfig(f"no config file at {path}; pass --config PATH or set MONITOR_CONFIG")
    return path


def settings(ctx: click.Context) -> Settings:
    """Load the config once per command."""
    from monitor.checks import database_problem

    obj = ctx.find_root().obj
    if "settings" not in obj:
        loaded = load_settings(existing_config(ctx))
        problem = database_problem(loaded)
        if problem is not None:
            raise problem
        obj["settings"] = loaded
    result: Settings = obj["settings"]
    return result


def nothing_stored(s: Settings) -> bool:
    """Whether the database does not exist yet, said on stderr: a command that only reads it
    must not make it (and its folder, from a mistyped path), nor let "0 hits" read as no
    news when nothing was ever polled."""
    from monitor.checks import shown

    if s.monitor.database.exists():
        return False
    click.echo(
        f"note: no database at {shown(s.monitor.database)}: nothing has been polled into it yet"
        " (monitor poll, or monitor run)",
        err=True,
    )
    return True


def since_option(default: str | None = None, help: str = "") -> Callable[[F], F]:
    return click.option(
        "--since",
        default=default,
        metavar="2d|2026-11-01",
        help=help or "only those first seen since this long ago, or since this local date",
    )


def resolve_since(text: str | None, s: Settings, now: datetime) -> datetime | None:
    """A --since value as an aware time (None when not given)."""
    if text is None:
        return None
    try:
        return parse_since(text, now, s.monitor.timezone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc


class _Group(click.Group):
    """Turns MonitorError and usage mistakes, before the command name or after it, into one
    line on stderr and the right exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        def run() -> Any:
            return super(_Group, self).main(args, prog_name, complete_var, False, **extra)

        if not standalone_mode:
            return run()
        sys.exit(_exit_status(run))


def _exit_status(run: Callable[[], Any]) -> int | str | None:
    """Run the command line; its exit status, each error said in one line on stderr."""
    try:
        returned = run()
    except SystemExit as done:
        return done.code
    except ConfigErrors as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        return exc.exit_code
    except ConfigError as exc:  # FILE:LINE: message, like the ones above
        click.echo(str(exc), err=True)
        return exc.exit_code
    except MonitorError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # `monitor` alone: the help
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:
        click.echo(f"error: {_usage_line(exc)}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:  # Ctrl-C at a prompt or during a command
        click.echo("Aborted!", err=True)
        return 1
    return returned if isinstance(returned, int) else 0  # --help and --version give 0


def _usage_line(exc: click.UsageError) -> str:
    """click's usage error in one line; a bad value's message already says what to write."""
    message = exc.format_message()
    missing = isinstance(exc, click.MissingParameter)
    if (isinstance(exc, click.BadParameter) and not missing) or exc.ctx is None:
        return message
    return f"{message} (see '{exc.ctx.command_path} --help')"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@_config
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", help=_LOG_FORMAT_HELP
)
@click.option("-v", "--verbose", is_flag=True, help=_VERBOSE_HELP)
@click.version_option(package_name="monitor")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, log_format: str, verbose: bool) -> None:
    """Watch news feeds for a subject and email a daily digest of what matched."""
    ctx.ensure_object(dict)
    ctx.obj.update(config_path=config_path, log_format=log_format, verbose=verbose)
    _setup_logging(ctx.obj, ctx.invoked_subcommand)


class _GuardedOutput:
    """Standard output that cannot stop a command half-way: a reader gone away (`monitor poll
    | head -1`), a full disk or a closed descriptor makes the rest of the output vanish, while
    the command finishes its work (a poll stores every feed). main() reports the loss."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.error: OSError | None = None

    def write(self, text: str) -> int:
        if self.error is None:
            try:
                return int(self._stream.write(text))
            except OSError as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        if self.error is None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        self.error = exc
        try:  # what is left in the buffer goes nowhere, rather than failing again at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the stream's
        return getattr(self._stream, name)


def main() -> None:
    """Entry point of the `monitor` script."""
    if sys.stdout is None:  # started with its standard output closed
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    output = _GuardedOutput(sys.stdout)
    sys.stdout = output
    try:
        _exit_after(output, _run())
    finally:
        # The process is about to end. Tearing down its modules makes the cyclic collector
        # walk every object they hold, again and again: 40-80 ms of every command's exit.
        # Frozen objects are skipped by it; they are still freed, and atexit still runs.
        gc.freeze()


def _run() -> int | str | None:
    """Run the command line; its exit status."""
    try:
        cli.main(prog_name="monitor")
    except SystemExit as done:
        return done.code
    return 0


def _exit_after(output: _GuardedOutput, code: int | str | None) -> None:
    """Exit as the command did; output lost for a reason other than its reader leaving is
    an error (exit status 1), said on stderr: a script must not take a cut list for a whole."""
    lost = output.error
    if lost is not None and lost.errno != errno.EPIPE:
        click.echo(f"error: could not write the output: {lost.strerror or lost}", err=True)
        code = code or 1
    sys.exit(code)


# the command modules register themselves on `cli`; imported last, as they import this module
from monitor import cli_feeds, cli_hits, cli_run, cli_watch  # noqa: E402, F401
