#!/usr/bin/env python3
"""Write kubesvc/apiserver/pbtables.py: the protobuf field tables of the kinds the API server decodes.

The tables are facts published by Kubernetes: field numbers, wire types and repeated/map shape come from the
``generated.proto`` of k8s.io/api and k8s.io/apimachinery; JSON names, ``omitempty``, ``,inline`` and whether the
Go field is a pointer come from the Go struct tags beside them (``types.go``), which is what Kubernetes' own JSON
follows. Neither file is copied into this repository: this script reads them from git checkouts of the two
repositories at the tag of the kubectl we test against, and only the derived tables are committed.

    python scripts/gen_pbtables.py --api /path/to/kubernetes/api.git --apimachinery /path/to/apimachinery.git \
        [--tag v0.32.4] > kubesvc/apiserver/pbtables.py

Only messages reachable from the top-level kinds in ``TOP`` are written. The script fails when a proto message
has no Go struct, a field has no Go tag, a type is one it does not know, or the message graph has a cycle.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field

API_PACKAGES = ["core/v1", "apps/v1", "networking/v1", "batch/v1", "policy/v1", "rbac/v1", "scheduling/v1",
                "autoscaling/v1", "autoscaling/v2", "discovery/v1"]
MACHINERY_PACKAGES = ["pkg/apis/meta/v1", "pkg/runtime", "pkg/util/intstr", "pkg/api/resource"]

C = "k8s.io.api.core.v1."
TOP: dict[tuple[str, str], str] = {
    **{("v1", k): C + k for k in ("Pod", "Service", "Endpoints", "ReplicationController", "Namespace", "ConfigMap",
                                  "Secret", "Event", "Node", "ServiceAccount", "ResourceQuota", "LimitRange",
                                  "PodTemplate", "Binding")},
    **{("apps/v1", k): "k8s.io.api.apps.v1." + k for k in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")},
    **{("networking.k8s.io/v1", k): "k8s.io.api.networking.v1." + k for k in ("Ingress", "IngressClass")},
    **{("batch/v1", k): "k8s.io.api.batch.v1." + k for k in ("Job", "CronJob")},
    ("policy/v1", "PodDisruptionBudget"): "k8s.io.api.policy.v1.PodDisruptionBudget",
    ("policy/v1", "Eviction"): "k8s.io.api.policy.v1.Eviction",
    ("scheduling.k8s.io/v1", "PriorityClass"): "k8s.io.api.scheduling.v1.PriorityClass",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "k8s.io.api.autoscaling.v1.HorizontalPodAutoscaler",
    ("autoscaling/v1", "Scale"): "k8s.io.api.autoscaling.v1.Scale",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "k8s.io.api.autoscaling.v2.HorizontalPodAutoscaler",
    **{("rbac.authorization.k8s.io/v1", k): "k8s.io.api.rbac.v1." + k
       for k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")},
    ("discovery.k8s.io/v1", "EndpointSlice"): "k8s.io.api.discovery.v1.EndpointSlice",
}
# DeleteOptions may arrive in any group's version (kubectl's typed clients send it with the group's apiVersion).
DELETE_OPTIONS = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"

M = "k8s.io.apimachinery.pkg."
# Types whose JSON is not their message's fields (custom MarshalJSON in apimachinery); the decoder knows each.
SPECIAL = {
    M + "apis.meta.v1.Time": "time",
    M + "apis.meta.v1.MicroTime": "microtime",
    M + "apis.meta.v1.Duration": "duration",
    M + "apis.meta.v1.FieldsV1": "rawjson",
    M + "runtime.RawExtension": "rawjson",
    M + "util.intstr.IntOrString": "intorstring",
    M + "api.resource.Quantity": "quantity",
}
SCALARS = {"string", "bytes", "int32", "int64", "bool", "double", "float", "uint32", "uint64"}

_MSG = re.compile(r"^message (\w+) \{$")
_FIELD = re.compile(r"^\s+(optional|repeated|required) ([\w.]+) (\w+) = (\d+);")
_MAP = re.compile(r"^\s+map<(\w+), ([\w.]+)> (\w+) = (\d+);")
_STRUCT = re.compile(r"^type (\w+) struct \{")
_TAG = re.compile(r"`([^`]*)`")


@dataclass
class ProtoField:
    number: int
    name: str
    label: str  # optional | repeated | map
    type: str  # scalar name or full message name
    key: str = ""


@dataclass
class GoField:
    json: str
    omitempty: bool
    inline: bool
    pointer: bool


@dataclass
class Package:
    proto_pkg: str
    messages: dict[str, list[ProtoField]] = field(default_factory=dict)
    structs: dict[str, dict[int, GoField]] = field(default_factory=dict)


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True, capture_output=True, text=True).stdout


def resolve(t: str, pkg: str) -> str:
    if t in SCALARS:
        return t
    return t[1:] if t.startswith(".") else f"{pkg}.{t}"


def parse_proto(text: str) -> Package:
    pkg = re.search(r"^package ([\w.]+);", text, re.M)
    assert pkg, "no package line"
    out = Package(pkg.group(1))
    current: list[ProtoField] | None = None
    for line in text.splitlines():
        if line.lstrip().startswith("//"):
            continue
        m = _MSG.match(line)
        if m:
            current = out.messages.setdefault(m.group(1), [])
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is None:
            continue
        m = _FIELD.match(line)
        if m:
            label, t, name, num = m.groups()
            current.append(ProtoField(int(num), name, "repeated" if label == "repeated" else "optional",
                                      resolve(t, out.proto_pkg)))
            continue
        m = _MAP.match(line)
        if m:
            k, v, name, num = m.groups()
            current.append(ProtoField(int(num), name, "map", resolve(v, out.proto_pkg), key=k))
            continue
        if line.strip() and not line.strip().startswith(("option ", "reserved ")):
            raise SystemExit(f"{out.proto_pkg}: unparsed proto line: {line!r}")
    return out


def parse_go(text: str, structs: dict[str, dict[int, GoField]]) -> None:
    current: dict[int, GoField] | None = None
    for line in text.splitlines():
        m = _STRUCT.match(line)
        if m:
            current = structs.setdefault(m.group(1), {})
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is None:
            continue
        body = line.split("//", 1)[0] if "`" not in line else line
        tag = _TAG.search(body)
        if not tag or "protobuf:\"" not in tag.group(1):
            continue
        tags = dict(re.findall(r'(\w+):"([^"]*)"', tag.group(1)))
        pb = tags["protobuf"]
        if pb == "-":
            continue
        number = int(pb.split(",")[1])
        decl = body[:tag.start()].split()
        gotype = decl[0] if len(decl) == 1 else decl[1]
        jparts = tags.get("json", "").split(",")
        jname = jparts[0] or (decl[0] if len(decl) > 1 else "")
        current[number] = GoField(json=jname, omitempty="omitempty" in jparts[1:], inline="inline" in jparts[1:],
                                  pointer=gotype.startswith("*"))


def load(repo: str, tag: str, path: str) -> Package:
    pkg = parse_proto(git(repo, "show", f"{tag}:{path}/generated.proto"))
    for name in git(repo, "ls-tree", "--name-only", f"{tag}:{path}").split():
        if (name.endswith(".go") and not name.endswith("_test.go") and not name.startswith("zz_")
                and name not in ("generated.pb.go", "types_swagger_doc_generated.go")):
            parse_go(git(repo, "show", f"{tag}:{path}/{name}"), pkg.structs)
    return pkg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--apimachinery", required=True)
    ap.add_argument("--tag", default="v0.32.4")
    a = ap.parse_args()
    pkgs = [load(a.api, a.tag, p) for p in API_PACKAGES] + [load(a.apimachinery, a.tag, p) for p in MACHINERY_PACKAGES]
    messages: dict[str, list[ProtoField]] = {}
    gofields: dict[str, dict[int, GoField]] = {}
    for p in pkgs:
        for name, fields in p.messages.items():
            full = f"{p.proto_pkg}.{name}"
            messages[full] = fields
            if full not in SPECIAL and name in p.structs:
                gofields[full] = p.structs[name]

    tables: dict[str, dict[int, tuple[str, str, str, str]]] = {}
    depth: dict[str, int] = {}

    def visit(full: str, path: tuple[str, ...]) -> int:
        if full in path:
            raise SystemExit(f"cycle: {' -> '.join((*path, full))}")
        if full in depth:
            return depth[full]
        if full not in messages:
            raise SystemExit(f"unknown message {full} (from {path[-1] if path else 'TOP'})")
        if full in SPECIAL:
            depth[full] = 1
            return 1
        if full not in gofields:
            raise SystemExit(f"{full}: no Go struct")
        rows: dict[int, tuple[str, str, str, str]] = {}
        deepest = 0
        for f in messages[full]:
            g = gofields[full].get(f.number)
            if g is None:
                raise SystemExit(f"{full}.{f.name} ({f.number}): no Go tag")
            flags = ("r" if f.label == "repeated" else "") + ("o" if g.omitempty else "") + \
                    ("p" if g.pointer else "") + ("i" if g.inline else "")
            if f.label == "map":
                if f.key != "string":
                    raise SystemExit(f"{full}.{f.name}: map key {f.key}")
                kind, ref = "map", f.type
                flags = ("o" if g.omitempty else "")
            elif f.type in SCALARS:
                kind, ref = f.type, ""
            else:
                kind, ref = "message", f.type
            if ref and ref not in SCALARS:
                deepest = max(deepest, visit(ref, (*path, full)))
            rows[f.number] = (g.json, kind, flags, ref)
        tables[full] = dict(sorted(rows.items()))
        depth[full] = deepest + 1
        return depth[full]

    for top in [*TOP.values(), DELETE_OPTIONS]:
        visit(top, ())

    out = sys.stdout
    out.write('"""Protobuf field tables of the kinds the API server decodes (generated; do not edit).\n\n'
              f"Written by scripts/gen_pbtables.py from the generated.proto files and Go struct tags of k8s.io/api\n"
              f"and k8s.io/apimachinery at {a.tag}. Each message maps a field number to\n"
              "(json name, type, flags, referenced message or map value type); flags: r repeated, o omitempty,\n"
              "p Go pointer (present on the wire means present in JSON), i inlined into the parent's JSON.\n"
              '"""\n\n')
    out.write("# ruff: noqa: E501\n\nfrom __future__ import annotations\n\n")
    out.write("Field = tuple[str, str, str, str]\n\n")
    out.write(f"MAX_DEPTH = {max(depth.values())}  # deepest message nesting reachable from TOP\n\n")
    out.write("SPECIAL: dict[str, str] = {\n")
    for k, v in SPECIAL.items():
        out.write(f"    {k!r}: {v!r},\n")
    out.write("}\n\nTOP: dict[tuple[str, str], str] = {\n")
    for (av, kind), full in TOP.items():
        out.write(f"    ({av!r}, {kind!r}): {full!r},\n")
    out.write(f"}}\n\nDELETE_OPTIONS = {DELETE_OPTIONS!r}\n\nMESSAGES: dict[str, dict[int, Field]] = {{\n")
    for full in sorted(tables):
        out.write(f"    {full!r}: {{\n")
        for num, row in tables[full].items():
            out.write(f"        {num}: {row!r},\n")
        out.write("    },\n")
    out.write("}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
