"""`kubesvc set image|env|selector`: kubectl's set sub-commands over the store (set_image.go, set_env.go,
set_selector.go): resources as ``TYPE/NAME ...`` or ``TYPE NAME ...`` (or ``TYPE -l SELECTOR`` / ``--all``),
each changed in one read-modify-write and reported as ``deployment.apps/web image updated``.

Rules kept here: an object the change leaves as it was prints nothing (set image, set env), as kubectl skips
an empty patch; set selector always reports ``selector updated``. --dry-run=client reads the object and
writes nothing; -o prints the changed object.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import DryRunOpt, NamespaceOpt, OutputOpt, SelectorOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option
Arg = typer.Argument

app = typer.Typer(help="Configure application resources: set image, env or selector.", no_args_is_help=True)

AllOpt = Annotated[bool, Opt("--all", help="Select all resources, in the namespace of the specified resource types.")]
_NO_RESOURCES = ("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n"
                 "   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")


def _targets(words: list[str], ns: str, selector: str | None, all_: bool, store: str | None,
             mode: str) -> list[tuple[str, str]]:
    """(Kind, name) for ``TYPE/NAME ...``, ``TYPE NAME ...``, or ``TYPE`` with -l/--all."""
    from kubesvc.api.kinds import resolve

    if not words:
        raise ClientError(_NO_RESOURCES)
    if any("/" in w for w in words):
        if not all("/" in w for w in words):
            raise ClientError("there is no need to specify a resource type as a separate argument when passing arguments "
                              "in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get "
                              "resource resource/<resource_name>'")
        return [(resolve(w.split("/", 1)[0]).kind, w.split("/", 1)[1]) for w in words]
    kind = resolve(words[0]).kind
    if len(words) > 1:
        return [(kind, n) for n in words[1:]]
    if not selector and not all_:
        raise ClientError(_NO_RESOURCES)
    reg = common.read_registry(store) if mode == "client" else common.registry(store)
    if reg is None:
        return []
    from kubesvc.api import selectors

    sel = selectors.parse(selector) if selector else None
    return [(kind, o["metadata"]["name"]) for o in reg.list(kind, ns) if sel is None or sel.matches(o["metadata"].get("labels"))]


def _apply(targets: list[tuple[str, str]], ns: str, fn: Callable[[dict], None], what: str, mode: str, out_fmt: str,
           store: str | None, always: bool = False) -> None:
    """Run ``fn`` on each object (read-modify-write; --dry-run=client on a copy) and report it."""
    for kind, name in targets:
        if mode == "client":
            before = common.read_object(common.read_registry(store), kind, ns, name)
            obj = copy.deepcopy(before)
            fn(obj)
            changed = obj != before
        else:
            seen: dict[str, Any] = {}

            def wrapped(o: dict, seen: dict[str, Any] = seen) -> None:
                seen["before"] = copy.deepcopy(o)
                fn(o)
                seen["changed"] = o != seen["before"]

            obj = common.registry(store).mutate(kind, ns, name, wrapped, dry_run=mode == "server", manager="kubectl-set")
            changed = bool(seen.get("changed"))
        if not changed and not always:
            continue
        if out_fmt:
            common.print_objects([_typed_templates(obj)], out_fmt, True)
        else:
            common.out(f"{common.type_name(obj)} {what} updated{common.dry_run_suffix(mode)}\n")


def _typed_templates(obj: dict) -> dict:
    """kubectl prints the object it decoded into its Go type: a pod template's metadata always carries
    ``creationTimestamp: null``."""
    obj = copy.deepcopy(obj)
    spec = obj.get("spec")
    for holder in (spec, ((spec or {}).get("jobTemplate") or {}).get("spec")):
        if isinstance(holder, dict) and isinstance(holder.get("template"), dict):
            holder["template"].setdefault("metadata", {}).setdefault("creationTimestamp", None)
    if isinstance(spec, dict) and isinstance(spec.get("jobTemplate"), dict):
        spec["jobTemplate"].setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return obj


@app.command("image")
def set_image(
    args: Annotated[list[str], Arg(help="TYPE NAME or TYPE/NAME, then CONTAINER_NAME=IMAGE pairs ('*' for all containers).")],
    selector: SelectorOpt = None,
    all_: AllOpt = False,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Update existing container image(s) of resources: kubesvc set image (TYPE NAME | TYPE/NAME) CONTAINER=IMAGE ..."""
    from kubesvc.api import podtemplate

    mode, out_fmt = common.dry_run_mode(dry_run), common.check_output(output)
    resources = [a for a in args if "=" not in a]
    pairs = [a for a in args if "=" in a]
    ns, _ = common.namespace(namespace)
    targets = _targets(resources, ns, selector, all_, store, mode)
    reg = common.read_registry(store)
    for kind, name in targets:  # kubectl reads the objects (Complete) before it checks the pairs (Validate)
        common.read_object(reg, kind, ns, name)
    images = podtemplate.parse_image_pairs(pairs)
    _apply(targets, ns, lambda o: podtemplate.set_images(o, images), "image", mode, out_fmt, store)


@app.command("env")
def set_env(
    args: Annotated[list[str] | None, Arg(help="TYPE NAME or TYPE/NAME, then KEY=VALUE to set and KEY- to remove.")] = None,
    env: Annotated[list[str] | None, Opt("--env", "-e", help="Specify a key-value pair for an environment variable to set into each container.")] = None,
    containers: Annotated[str, Opt("--containers", "-c", help="The names of containers in the selected pod templates to change - may use wildcards")] = "*",
    from_: Annotated[str, Opt("--from", help="The name of a resource from which to inject environment variables (configmap/NAME or secret/NAME)")] = "",
    prefix: Annotated[str, Opt("--prefix", help="Prefix to append to variable names")] = "",
    keys: Annotated[list[str] | None, Opt("--keys", help="Comma-separated list of keys to import from specified resource")] = None,
    list_: Annotated[bool, Opt("--list", help="If true, display the environment and any changes in the standard format.")] = False,
    resolve: Annotated[bool, Opt("--resolve", help="If true, show secret or configmap references when listing variables")] = False,
    overwrite: Annotated[bool, Opt("--overwrite/--no-overwrite", help="If true, allow environment to be overwritten, otherwise reject updates that overwrite existing environment.")] = True,
    selector: SelectorOpt = None,
    all_: AllOpt = False,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Update environment variables on a pod template: kubesvc set env RESOURCE/NAME KEY_1=VAL_1 ... KEY_N-."""
    from kubesvc.api import podtemplate
    from kubesvc.api.kinds import resolve as resolve_kind

    mode, out_fmt = common.dry_run_mode(dry_run), common.check_output(output)
    words = list(args or [])
    resources = [w for w in words if "=" not in w and not w.endswith("-")]
    env_words = [w for w in words if w not in resources] + list(env or [])
    ns, _ = common.namespace(namespace)
    targets = _targets(resources, ns, selector, all_, store, mode)
    sets, removes = podtemplate.parse_env_args(env_words)
    warnings: list[str] = []
    if from_:
        word, sep, name = from_.partition("/")
        kind = resolve_kind(word).kind if sep else ""
        if kind not in ("ConfigMap", "Secret"):
            raise ClientError(f"unsupported resource specified in --from: {from_}")  # kubectl's wording for other kinds
        source = common.read_object(common.read_registry(store), kind, ns, name)
        wanted = [k for value in (keys or []) for k in value.split(",") if k]
        sets += podtemplate.env_from_source(source, prefix, wanted, warnings)
    for w in warnings:
        common.warn(w)

    reg = common.read_registry(store)

    if list_:
        def value_of(what: str, name: str, key: str) -> str | None:
            if not resolve or reg is None:
                return None
            import base64

            src = reg.get("ConfigMap" if what == "configmap" else "Secret", ns, name)
            data = src.get("data") or {}
            if key not in data:
                return None
            return data[key] if what == "configmap" else base64.b64decode(data[key]).decode(errors="replace")

        for kind, name in targets:
            obj = copy.deepcopy(common.read_object(reg, kind, ns, name))
            chosen = podtemplate.matching_containers(obj, containers)
            if not chosen:
                common.warn(f'{kind}/{name} does not have any containers matching "{containers}"')
                continue
            podtemplate.update_env(obj, chosen, sets, removes, overwrite)
            common.out(podtemplate.list_env(obj, chosen, value_of))
        return

    missing: list[str] = []

    def change(obj: dict) -> None:
        chosen = podtemplate.matching_containers(obj, containers)
        if not chosen:
            missing.append(f'{obj["kind"]}/{obj["metadata"]["name"]} does not have any containers matching "{containers}"')
            return
        podtemplate.update_env(obj, chosen, sets, removes, overwrite)

    _apply(targets, ns, change, "env", mode, out_fmt, store)
    for w in missing:
        common.warn(w)


@app.command("selector")
def set_selector(
    args: Annotated[list[str] | None, Arg(help="TYPE NAME or TYPE/NAME, then the selector (k=v[,k2=v2]).")] = None,
    resource_version: Annotated[str, Opt("--resource-version", help="If non-empty, the selectors update will only succeed if this is the current resource-version for the object.")] = "",
    all_: AllOpt = False,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Set the selector on a resource (Services): kubesvc set selector (TYPE NAME | TYPE/NAME) EXPRESSIONS."""
    from kubesvc.api import selectors
    from kubesvc.errors import Conflict

    mode, out_fmt = common.dry_run_mode(dry_run), common.check_output(output)
    words = list(args or [])
    if len(words) < 2:
        raise ClientError(_NO_RESOURCES)
    expr = words[-1]
    ns, _ = common.namespace(namespace)
    targets = _targets(words[:-1], ns, None, all_, store, mode)
    if "!=" in expr:
        raise ClientError('"!=" is not a valid label selector operator')
    sel = selectors.parse(expr) if expr else selectors.EVERYTHING
    labels: dict[str, str] = {}
    exprs: list[str] = []
    for req in sel.requirements:
        if req.operator in ("=", "==") and len(req.values) == 1:
            labels[req.key] = req.values[0]
        else:
            op = {"in": "In", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist"}.get(req.operator, req.operator)
            exprs.append("{" + f"{req.key} {op} [{' '.join(sorted(req.values))}]" + "}")

    def change(obj: dict) -> None:
        from kubesvc.api.kinds import BY_KIND

        # the server checks the version the patch carries; a client dry run sends nothing
        if resource_version and mode != "client" and obj["metadata"].get("resourceVersion") != resource_version:
            raise Conflict(BY_KIND[obj["kind"]].resource, obj["metadata"]["name"])
        if obj["kind"] != "Service":
            raise ClientError("setting a selector is only supported for Services")
        if exprs:
            raise ClientError(f"match expression [{' '.join(exprs)}] not supported on this object")
        obj.setdefault("spec", {})["selector"] = dict(labels)

    _apply(targets, ns, change, "selector", mode, out_fmt, store, always=True)
