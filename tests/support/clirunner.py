"""Typer's CliRunner without its per-call conversion: ``typer.testing.CliRunner.invoke`` turns the Typer app into its
click command on every call (``typer.main.get_command``: every parameter of every command, ~0.1 s of CPU for
kubesvc's whole app, while the command it then runs mostly takes a few milliseconds). ``CliRunner`` here converts
each app once and reuses the click command; everything else (isolation, parsing, the result) is Typer's own.

A click command holds no per-call state (each ``main()`` makes a new Context), so reusing it is what a process that
runs the app twice would do. ``shared_app()`` is one ``build_app()`` (every verb mounted) per test process.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import typer
import typer.testing

_COMMANDS: weakref.WeakKeyDictionary[typer.Typer, Any] = weakref.WeakKeyDictionary()  # app -> its click command


def command(app: typer.Typer) -> Any:
    """The app's click command, converted once per app object."""
    cmd = _COMMANDS.get(app)
    if cmd is None:
        cmd = _COMMANDS[app] = typer.main.get_command(app)
    return cmd


class CliRunner(typer.testing.CliRunner):
    def invoke(self, app: typer.Typer, *args: Any, **kwargs: Any) -> typer.testing.Result:  # type: ignore[override]
        cmd = command(app)
        convert = typer.testing._get_command  # like the runner itself: single-threaded (it swaps sys.stdout too)
        typer.testing._get_command = lambda _app: cmd  # type: ignore[assignment]
        try:
            return super().invoke(app, *args, **kwargs)
        finally:
            typer.testing._get_command = convert


@functools.cache
def shared_app() -> typer.Typer:
    """One kubesvc app with every verb, for the whole test process."""
    from kubesvc.cli.app import build_app

    return build_app()
