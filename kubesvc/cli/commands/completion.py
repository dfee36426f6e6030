"""`kubesvc completion bash|zsh|fish`: a script that completes verbs, flags, resource types and the names of
objects in the store, the way kubectl's completion (cobra's ``__complete``) does.

How it works: the script asks kubesvc itself (``_KUBESVC_COMPLETE=complete_<shell>``, click's completion
protocol as Typer ships it). In that mode ``cli/app.py`` mounts every verb, which imports this module; its
``install()`` then teaches the resource arguments of every verb (``args``, ``target``, ``pod``, ``resource``) to
complete:
- a resource type first (``pods``, ``svc``... every plural and short name of ``kubesvc/api/kinds.py``; after a
  comma in ``get a,b``, the next type);
- ``-n``/``--namespace`` completes namespace names;
- then names of that type, read from the store in the namespace given by ``-n`` (or ``default``); ``TYPE/``
  completes to ``TYPE/NAME``; ``logs`` completes pod names, ``rollout`` deployment names.
Reading the store never fails loudly: no store, a locked or broken store, anything odd gives no names.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from kubesvc.errors import ClientError

COMPLETE_VAR = "_KUBESVC_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
RESOURCE_ARGS = ("args", "target", "pod", "resource")
# verbs whose first argument is a name of one kind (no TYPE word)
_FIXED_KIND = {"logs": "Pod"}
# verbs that take one TYPE and names (several for these, one for the others)
_MANY_NAMES = ("get", "describe", "delete")
_TYPES_ONLY = ("explain",)


def completion(
    shell: Annotated[str | None, typer.Argument(help="The shell: bash, zsh or fish.", show_default=False)] = None,
) -> None:
    """Output shell completion code for the specified shell (bash, zsh or fish).

    bash: source <(kubesvc completion bash); zsh: source <(kubesvc completion zsh); fish: kubesvc completion fish | source"""
    from typer._completion_shared import get_completion_script

    if not shell:
        raise ClientError("Shell not specified.\nSee 'kubesvc completion -h' for help and examples")
    if shell not in SHELLS:
        raise ClientError(f'Unsupported shell type "{shell}".\nSee \'kubesvc completion -h\' for help and examples')
    typer.echo(get_completion_script(prog_name="kubesvc", complete_var=COMPLETE_VAR, shell=shell))


# ------------------------------------------------------------------------------------ candidates


def type_words() -> list[str]:
    """The resource type words offered first: every plural and short name (kubectl offers the plurals)."""
    from kubesvc.api.kinds import KINDS

    words = {k.plural for k in KINDS} | {s for k in KINDS for s in k.short_names}
    return sorted(words)


def names(store: str | None, kind: str, namespace: str | None) -> list[str]:
    """Names of ``kind`` in ``namespace`` from the store; [] on any trouble (completion never fails loudly)."""
    try:
        from kubesvc.api.kinds import BY_KIND
        from kubesvc.config import default_store_path
        from kubesvc.store.db import Store

        path = store or os.environ.get("KUBESVC_STORE") or default_store_path()
        if not os.path.isfile(path):
            return []
        ns = (namespace or "default") if BY_KIND[kind].namespaced else None
        s = Store.open(path)  # read directly: no registry, no `up` checks on a key press
        try:
            return sorted(o["metadata"]["name"] for o in s.list(kind, ns))
        finally:
            s.close()
    except Exception:
        return []


def _root_param(ctx: Any, name: str) -> Any:
    while ctx is not None:
        value = (ctx.params or {}).get(name)
        if value:
            return value
        ctx = ctx.parent
    return None


def candidates(ctx: Any, param_name: str, incomplete: str) -> list[str]:
    """What a resource argument may be, given the words before it (in ``ctx.params``)."""
    from kubesvc.api.kinds import resolve

    path = ctx.command_path.split()[1:] if ctx.command_path else []
    verb = path[0] if path else ""
    prev = ctx.params.get(param_name) or []
    if isinstance(prev, str):
        prev = [prev]
    store = _root_param(ctx, "store")
    namespace = _root_param(ctx, "namespace")

    def resolve_kind(word: str) -> str | None:
        try:
            return resolve(word).kind
        except Exception:
            return None

    if verb in _FIXED_KIND:
        return [n for n in names(store, _FIXED_KIND[verb], namespace) if n.startswith(incomplete)] if not prev else []
    if "/" in incomplete:
        word, _, part = incomplete.partition("/")
        kind = resolve_kind(word)
        return [f"{word}/{n}" for n in names(store, kind, namespace) if n.startswith(part)] if kind else []
    if not prev:
        head, comma, last = incomplete.rpartition(",")
        types = type_words()
        if verb == "rollout":
            types = ["deployment", "deployments", "deploy"]
        return [f"{head}{comma}{t}" for t in types if t.startswith(last)]
    if verb in _TYPES_ONLY or any("/" in p for p in prev):
        return []
    if len(prev) > 1 and verb not in _MANY_NAMES:
        return []
    kind = resolve_kind(prev[0].split(",")[0])
    if kind is None or "," in prev[0]:
        return []
    return [n for n in names(store, kind, namespace) if n.startswith(incomplete) and n not in prev[1:]]


def install() -> None:
    """Teach Typer's arguments named in RESOURCE_ARGS to complete from :func:`candidates` (completion mode only)."""
    from typer._click.shell_completion import CompletionItem
    from typer.core import TyperArgument, TyperOption

    if getattr(TyperArgument, "_kubesvc_completion", False):
        return
    original = TyperArgument.shell_complete

    def shell_complete(self: Any, ctx: Any, incomplete: str) -> list[Any]:
        found = original(self, ctx, incomplete)
        if found or self.name not in RESOURCE_ARGS:
            return found
        try:
            return [CompletionItem(v) for v in candidates(ctx, self.name, incomplete)]
        except Exception:
            return []

    TyperArgument.shell_complete = shell_complete  # type: ignore[method-assign]

    original_option = TyperOption.shell_complete

    def option_complete(self: Any, ctx: Any, incomplete: str) -> list[Any]:
        found = original_option(self, ctx, incomplete)
        if found or self.name != "namespace":
            return found
        try:
            store = _root_param(ctx, "store")
            return [CompletionItem(n) for n in names(store, "Namespace", None) if n.startswith(incomplete)]
        except Exception:
            return []

    TyperOption.shell_complete = option_complete  # type: ignore[method-assign]
    TyperArgument._kubesvc_completion = True  # type: ignore[attr-defined]


if any(k.startswith(COMPLETE_VAR) for k in os.environ):
    install()
