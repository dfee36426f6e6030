"""The Typer app: global options and the list of mounted commands (one verb per module)."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from typer._click.exceptions import UsageError as _USAGE_ERROR  # click's, as vendored by Typer
from typer.core import TyperGroup

from kubesvc.cli.common import Context, set_global

HELP = """kubesvc: Kubernetes Services on one machine, no cluster.

The same manifests and kubectl habits: create, apply, get, describe, delete, expose, label, annotate."""


class FunnelGroup(TyperGroup):
    """Routes every typed error through the one funnel, for `main()` and Typer's CliRunner alike, and reads
    the command line as kubectl does (``cli/flags.py``) before click parses it."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if ctx.parent is None:
            from kubesvc.cli.flags import FlagError, normalize

            try:
                args = normalize(self, list(args), "kubesvc")
            except FlagError as e:
                if ctx.resilient_parsing:  # shell completion: a half-typed line is no error
                    return super().parse_args(ctx, args)
                _flag_error(e.message, e.command_path)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        from kubesvc.cli.common import Exit, print_error
        from kubesvc.errors import KubesvcError

        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as e:
            # kubectl's wording and exit code for flag and argument errors
            msg = e.format_message()
            # the command path as the user typed it (CliRunner names the root after its callback)
            sub = e.ctx.command_path.split(" ", 1)[1:] if e.ctx is not None else [ctx.invoked_subcommand or ""]
            path = " ".join(["kubesvc", *sub]).strip()
            if msg.startswith("No such option: "):
                _flag_error("unknown flag: " + msg[len("No such option: "):].split(" ", 1)[0], path)
            unknown = re.match(r"No such command '(.*?)'\.(?: Did you mean '(.*?)'\?)?", msg)
            if unknown:
                hint = f"\n\nDid you mean this?\n\t{unknown.group(2)}\n" if unknown.group(2) else ""
                typer.echo(f'Error: unknown command "{unknown.group(1)}" for "{path}"{hint}', err=True)
                raise typer.Exit(1) from None
            typer.echo(f"error: {msg}\nSee '{path} --help' for usage.", err=True)
            raise typer.Exit(1) from None
        except Exit as e:
            raise typer.Exit(e.code) from None
        except KubesvcError as e:
            print_error(e)
            raise typer.Exit(1) from None


def _flag_error(message: str, command_path: str) -> None:
    """A flag error as cobra prints it (kubectl's own ``Error:`` capital included), exit 1."""
    typer.echo(f"Error: {message}\nSee '{command_path} --help' for usage.", err=True)
    raise typer.Exit(1)


def _print_version(value: bool) -> None:
    if value:
        from kubesvc.cli.commands.admin import version

        version(output=None, client=True)
        raise typer.Exit(0)


# verb -> "module:attribute" under kubesvc.cli.commands; a Typer sub-app where the attribute is `app`.
COMMANDS: dict[str, str] = {
    "create": "create:app",
    "apply": "apply:apply",
    "get": "get:get",
    "describe": "describe:describe",
    "delete": "delete:delete",
    "expose": "expose:expose",
    "label": "label:label",
    "annotate": "label:annotate",
    "init": "admin:init",
    "version": "admin:version",
    "proxy": "proxy:proxy",
    "up": "up:up",
    "down": "up:down",
    "status": "up:status",
    "dns": "dns:dns",
    "apiserver": "apiserver:apiserver",  # apiserver helper
    "config": "config:app",  # apiserver helper
    "kubelet": "kubelet:kubelet",  # workloads helper
    "scale": "workloads:scale",  # workloads helper
    "rollout": "workloads:rollout",  # workloads helper (sub-app: status, restart, undo)
    "logs": "logs:logs",  # streams helper (issue 14)
    "exec": "exec:exec_",  # streams helper (issue 14)
    "port-forward": "port_forward:port_forward",  # streams helper (issue 14)
    "ingress": "ingress:ingress",  # ingress helper
    "run": "run:run",  # verbs helper (issue 14)
    "autoscale": "autoscale:autoscale",  # scale helper (issue 13)
    "set": "set:app",  # verbs helper (issue 14)
    "explain": "explain:explain",  # openapi helper
    "top": "top:top",  # observe helper (issue 19)
    "trace": "trace:trace",  # observe helper (issue 19)
    "patch": "patch:patch",  # verbs helper (issue 14)
    "wait": "wait:wait",  # verbs helper (issue 14)
    "replace": "replace:replace",  # verbs helper (issue 14)
    "edit": "edit:edit",  # verbs helper (issue 14)
    "diff": "diff:diff",  # verbs helper (issue 14)
    "api-resources": "api_resources:api_resources",  # verbs helper (issue 14)
    "api-versions": "api_resources:api_versions",  # verbs helper (issue 14)
    "completion": "completion:completion",  # verbs helper (issue 14)
}
_GLOBAL_OPTS_WITH_VALUE = {"--store", "--namespace", "-n"}


def _requested_verb(argv: list[str]) -> str | None:
    """The verb in argv, skipping the global options before it (None: show everything)."""
    it = iter(argv)
    for tok in it:
        if tok in _GLOBAL_OPTS_WITH_VALUE:
            next(it, None)
        elif tok.startswith("-"):
            if tok == "--version":
                return "version"
            if tok in ("-h", "--help") or tok.startswith(("--install-completion", "--show-completion")):
                return None
        else:
            return tok if tok in COMMANDS else None
    return None


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The app. With argv naming a verb, only that verb is mounted: building every command's
    parameters costs tens of milliseconds of start-up that a single `get` should not pay."""
    import importlib
    import os

    app = typer.Typer(
        cls=FunnelGroup,
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        ctx: typer.Context,
        store: Annotated[str | None, typer.Option("--store", help="Path of the SQLite store (default $KUBESVC_STORE, else ~/.kubesvc/store.db).")] = None,
        namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace for this request.")] = None,
        version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                              help="Print the client version (as `kubesvc version --client`) and exit.")] = False,
    ) -> None:
        ctx.obj = Context(store_path=store, namespace=namespace)
        set_global(ctx.obj)

    completing = any(k.startswith("_KUBESVC_COMPLETE") or k == "_TYPER_COMPLETE_ARGS" for k in os.environ)
    verb = None if (argv is None or completing) else _requested_verb(argv)
    for name, target in COMMANDS.items():
        if verb is not None and name != verb:
            continue
        module_name, attr = target.split(":")
        module = importlib.import_module(f"kubesvc.cli.commands.{module_name}")
        obj = getattr(module, attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)
    return app
