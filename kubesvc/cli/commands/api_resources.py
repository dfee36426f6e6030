"""`kubesvc api-resources` and `kubesvc api-versions`: the resources kubesvc serves, as kubectl prints
them from discovery (api-resources.go, apiversions.go).

Rules kept here:
- the rows come from the API server's discovery table (``kubesvc.apiserver.discovery.RESOURCES``, built from
  ``kubesvc/api/kinds.py``), so a new kind shows up here and in ``kubectl api-resources`` alike, with the
  same verbs and categories.
- rows sorted by group then name (``--sort-by=name|kind`` instead); ``-o wide`` adds VERBS and CATEGORIES,
  ``-o name`` prints ``plural[.group]``; any other -o is ``--output X is not available``.
- filters: ``--namespaced=true|false`` (only when given), ``--api-group``, ``--verbs`` (all of them),
  ``--categories``; ``--no-headers``.
- api-versions: every group/version, sorted as kubectl sorts strings.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.errors import ClientError

Opt = typer.Option


def rows(namespaced: bool | None = None, api_group: str | None = None, verbs: list[str] | None = None,
         categories: list[str] | None = None, sort_by: str = "") -> list[dict]:
    """Discovery entries (name, shortNames, group, groupVersion, namespaced, kind, verbs, categories)."""
    from kubesvc.apiserver import discovery

    out = []
    seen: set[tuple[str, str]] = set()
    for gv in discovery.group_versions():
        listing = discovery.resource_list(gv) or {"resources": []}
        for r in listing["resources"]:
            group = gv.split("/")[0] if "/" in gv else ""
            if "/" in r["name"] or (group, r["name"]) in seen:
                continue  # subresources are not resources; a group's preferred version comes first
            seen.add((group, r["name"]))
            out.append({**r, "group": group, "groupVersion": gv})
    if namespaced is not None:
        out = [r for r in out if r["namespaced"] == namespaced]
    if api_group is not None:
        out = [r for r in out if r["group"] == api_group]
    if verbs:
        out = [r for r in out if set(verbs) <= set(r.get("verbs") or [])]
    if categories:
        out = [r for r in out if set(categories) <= set(r.get("categories") or [])]
    if sort_by == "name":
        out.sort(key=lambda r: r["name"])
    elif sort_by == "kind":
        out.sort(key=lambda r: r["kind"])
    else:
        out.sort(key=lambda r: (r["group"], r["name"]))
    return out


def render(entries: list[dict], output: str, no_headers: bool) -> str:
    from kubesvc.cli.printers import tabwrite

    if output == "name":
        return "".join(f"{r['name']}.{r['group']}\n" if r["group"] else f"{r['name']}\n" for r in entries)
    head = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if output == "wide":
        head += ["VERBS", "CATEGORIES"]
    lines = [] if no_headers else ["\t".join(head)]
    for r in entries:
        cells = [r["name"], ",".join(r.get("shortNames") or []), r["groupVersion"], str(r["namespaced"]).lower(), r["kind"]]
        if output == "wide":
            cells += [",".join(sorted(r.get("verbs") or [])), ",".join(r.get("categories") or [])]
        lines.append("\t".join(cells))
    return tabwrite("".join(line + "\n" for line in lines), minwidth=0, padding=3)


def api_resources(
    output: Annotated[str | None, Opt("--output", "-o", help="Output format. One of: (wide, name).")] = None,
    namespaced: Annotated[bool | None, Opt("--namespaced/--no-namespaced", help="If false, non-namespaced resources will be returned, otherwise returning namespaced resources by default.", show_default=False)] = None,
    api_group: Annotated[str | None, Opt("--api-group", help="Limit to resources in the specified API group.")] = None,
    verbs: Annotated[list[str] | None, Opt("--verbs", help="Limit to resources that support the specified verbs.")] = None,
    categories: Annotated[list[str] | None, Opt("--categories", help="Limit to resources that belong to the specified categories.")] = None,
    sort_by: Annotated[str, Opt("--sort-by", help="If non-empty, sort list of resources using specified field. The field can be either 'name' or 'kind'.")] = "",
    no_headers: Annotated[bool, Opt("--no-headers", help="When using the default or custom-column output format, don't print headers (default print headers).")] = False,
    cached: Annotated[bool, Opt("--cached", help="Use the cached list of resources if available (kubesvc reads its own table: always current).")] = False,
) -> None:
    """Print the supported API resources on the server."""
    out_fmt = output or ""
    if out_fmt not in ("", "wide", "name"):
        raise ClientError(f"--output {out_fmt} is not available")
    if sort_by not in ("", "name", "kind"):
        raise ClientError("--sort-by accepts only name or kind")
    split = [v for value in (verbs or []) for v in value.split(",") if v]
    cats = [c for value in (categories or []) for c in value.split(",") if c]
    common.out(render(rows(namespaced, api_group, split, cats, sort_by), out_fmt, no_headers))


def api_versions() -> None:
    """Print the supported API versions on the server, in the form of "group/version"."""
    from kubesvc.apiserver import discovery

    common.out("".join(v + "\n" for v in sorted(discovery.group_versions())))
