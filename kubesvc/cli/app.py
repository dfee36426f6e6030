"""The Typer app: global options and the list of mounted commands (one verb per module)."""

from __future__ import annotations

from typing import Optional

import typer
from typer.core import TyperGroup
from typing_extensions import Annotated

from kubesvc.cli.common import Context, set_global

HELP = """kubesvc: Kubernetes Services on one machine, no cluster.

The same manifests and kubectl habits: create, apply, get, describe, delete, expose, label, annotate."""


_USAGE_ERROR = typer.BadParameter.__mro__[1]  # click's UsageError, as vendored by Typer


class FunnelGroup(TyperGroup):
    """Routes every typed error through the one funnel, for `main()` and Typer's CliRunner alike."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        from kubesvc.cli.common import Exit, print_error
        from kubesvc.errors import KubesvcError

        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as e:
            # kubectl's wording and exit code for flag and argument errors
            msg = e.format_message()
            if msg.startswith("No such option: "):
                msg = "unknown flag: " + msg[len("No such option: "):].split(" ", 1)[0]
            sub = ctx.invoked_subcommand or ""
            typer.echo(f"error: {msg}\nSee 'kubesvc {sub} --help' for usage.".replace("  ", " "), err=True)
            raise typer.Exit(1) from None
        except Exit as e:
            raise typer.Exit(e.code) from None
        except KubesvcError as e:
            print_error(e)
            raise typer.Exit(1) from None


def build_app() -> typer.Typer:
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
        store: Annotated[Optional[str], typer.Option("--store", help="Path of the SQLite store (default $KUBESVC_STORE, else ~/.kubesvc/store.db).")] = None,
        namespace: Annotated[Optional[str], typer.Option("--namespace", "-n", help="Namespace for this request.")] = None,
    ) -> None:
        ctx.obj = Context(store_path=store, namespace=namespace)
        set_global(ctx.obj)

    from kubesvc.cli.commands import admin, apply, create, delete, describe, expose, get, label

    app.add_typer(create.app, name="create")
    app.command("apply")(apply.apply)
    app.command("get")(get.get)
    app.command("describe")(describe.describe)
    app.command("delete")(delete.delete)
    app.command("expose")(expose.expose)
    app.command("label")(label.label)
    app.command("annotate")(label.annotate)
    app.command("version")(admin.version)
    app.command("init")(admin.init)
    from kubesvc.cli.commands import up as _dataplane; _dataplane.mount(app)  # noqa: E702  proxy, up, down, status (dataplane helper; lead: replace with app.command lines)
    from kubesvc.cli.commands import dns as _dns; app.command("dns")(_dns.dns)  # noqa: E702  dns helper; lead: fold into the imports above
    return app
