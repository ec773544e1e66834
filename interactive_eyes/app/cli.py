"""The ``ie-bench`` command: a thin click layer over library functions.

Subcommands are registered lazily as ``"module:attribute"`` strings so that ``ie-bench --help``
imports no heavy library (torch, mediapipe, PyAV). Logging is configured here, in the group
callback, never at import time.
"""

from __future__ import annotations

import difflib
import importlib
import logging

import click

from interactive_eyes import __version__
from interactive_eyes.app.exit_codes import HELP_EPILOG

# name -> "module:click_command". Add a command by adding one line here.
COMMANDS: dict[str, str] = {
    "data": "interactive_eyes.app.cmd_data:data",
    "demo": "interactive_eyes.app.cmd_demo:demo",
    "env": "interactive_eyes.app.cmd_env:env",
    "interactivity": "interactive_eyes.app.cmd_interactivity:interactivity",
    "methods": "interactive_eyes.app.cmd_run:methods",
    "run": "interactive_eyes.app.cmd_run:run",
    "leaderboard": "interactive_eyes.app.cmd_leaderboard:leaderboard",
    "manifest": "interactive_eyes.app.cmd_manifest:manifest",
    "score": "interactive_eyes.app.cmd_score:score",
    "validate": "interactive_eyes.app.cmd_score:validate",
    "stats": "interactive_eyes.app.cmd_stats:stats",
    "weights": "interactive_eyes.app.cmd_weights:weights",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, cmd_name):
        if cmd_name in self.lazy_commands:
            module_name, attr = self.lazy_commands[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=HELP_EPILOG)
@click.version_option(__version__, prog_name="ie-bench")
@click.option("-v", "--verbose", count=True,
              help="More log output (-v info and native MediaPipe/TFLite lines, -vv debug).")
def main(verbose: int) -> None:
    """ie-bench: evaluation suite for audio-driven multi-person talking-video generation."""
    from interactive_eyes.quiet import capture_native_stderr

    capture_native_stderr(verbose=verbose > 0)  # before logging binds to sys.stderr
    configure_logging(verbose)


if __name__ == "__main__":  # pragma: no cover
    main()
