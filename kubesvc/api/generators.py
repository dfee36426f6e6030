"""`kubectl create secret tls|generic` and `kubectl create configmap` generators (kubectl's
pkg/cmd/create/create_secret*.go, create_configmap.go): the typed objects kubectl builds, in its field order,
with its client-side error texts. Pure: file contents come in as bytes.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from kubesvc.errors import ClientError

_CERT_BLOCKS = (b"-----BEGIN CERTIFICATE-----",)
_KEY_MARK = b"PRIVATE KEY-----"


def _has_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def check_key_pair(cert: bytes, key: bytes) -> None:
    """Go's tls.X509KeyPair checks, with its messages."""
    if not any(m in cert for m in _CERT_BLOCKS):
        if _KEY_MARK in cert:
            raise ClientError("tls: failed to find certificate PEM data in certificate input, but did find a private key; "
                              "PEM inputs may have been switched")
        raise ClientError("tls: failed to find any PEM data in certificate input")
    if _KEY_MARK not in key:
        if any(m in key for m in _CERT_BLOCKS):
            raise ClientError("tls: found a certificate rather than a key in the PEM for the private key")
        raise ClientError("tls: failed to find any PEM data in key input")
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        certificate = x509.load_pem_x509_certificate(cert)
        private = serialization.load_pem_private_key(key, password=None)
    except ValueError as e:
        raise ClientError(f"tls: failed to parse key pair: {e}") from None
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if certificate.public_key().public_bytes(enc, fmt) != private.public_key().public_bytes(enc, fmt):
        raise ClientError("tls: private key does not match public key")


def tls_secret(name: str, cert: bytes, key: bytes) -> dict[str, Any]:
    check_key_pair(cert, key)
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": name, "creationTimestamp": None},
        "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
        "type": "kubernetes.io/tls",
    }


def _pairs(literals: list[str], files: list[tuple[str, bytes]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for lit in literals:
        k, sep, v = lit.partition("=")
        if not sep or not k:
            raise ClientError(f"invalid literal source {lit}, expected key=value")
        if k in out:
            raise ClientError(f'cannot add key {k}, another key by that name already exists in Data for Secret "".')
        out[k] = v.encode()
    for spec, content in files:
        k = spec.partition("=")[0] if "=" in spec else os.path.basename(spec)
        out[k] = content
    return out


def generic_secret(name: str, literals: list[str], files: list[tuple[str, bytes]], type_: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": None}}
    data = _pairs(literals, files)
    if data:
        obj["data"] = {k: base64.b64encode(data[k]).decode() for k in sorted(data)}  # a Go map: sorted keys
    if type_:
        obj["type"] = type_
    return obj


def configmap(name: str, literals: list[str], files: list[tuple[str, bytes]]) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": None}}
    data = _pairs(literals, files)
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for k, v in data.items():
        try:
            text[k] = v.decode("utf-8")
        except UnicodeDecodeError:
            binary[k] = base64.b64encode(v).decode()
    if text:
        obj["data"] = dict(sorted(text.items()))
    if binary:
        obj["binaryData"] = dict(sorted(binary.items()))
    return obj


# ------------------------------------------------------------------ create deployment|job|cronjob|ingress|...
# Typed objects in Go struct field order (kubectl prints generators' JSON in that order; YAML is sorted).

def _meta(name: str, **extra: Any) -> dict[str, Any]:
    """ObjectMeta in field order: name, creationTimestamp, labels, annotations, ownerReferences."""
    meta: dict[str, Any] = {"name": name, "creationTimestamp": None}
    for key in ("labels", "annotations", "ownerReferences"):
        if extra.get(key):
            meta[key] = extra[key]
    return meta


def _container(name: str, image: str, *, command: list[str] | None = None, args: list[str] | None = None,
               ports: list[dict[str, Any]] | None = None, env: list[dict[str, Any]] | None = None,
               pull_policy: str = "", privileged: bool = False, stdin: bool = False, stdin_once: bool = False,
               tty: bool = False) -> dict[str, Any]:
    """A Container in Go field order; ``resources: {}`` always (a struct, never omitted)."""
    c: dict[str, Any] = {"name": name, "image": image}
    if command:
        c["command"] = list(command)
    if args:
        c["args"] = list(args)
    if ports:
        c["ports"] = ports
    if env:
        c["env"] = env
    c["resources"] = {}
    if pull_policy:
        c["imagePullPolicy"] = pull_policy
    if privileged:
        c["securityContext"] = {"privileged": True}
    if stdin:
        c["stdin"] = True
    if stdin_once:
        c["stdinOnce"] = True
    if tty:
        c["tty"] = True
    return c


def _image_container_name(image: str) -> str:
    """kubectl create deployment's container name: the image's last path part without tag or digest;
    ``_`` and ``.`` become ``-`` and a random 5-letter suffix is added (as kubectl's sanitizeAndUniquify)."""
    name = image.split("/")[-1]
    name = name.split(":")[0] if ":" in name else name
    name = name.split("@")[0] if "@" in name else name
    if "_" in name or "." in name:
        import random

        alphabet = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
        name = name.replace("_", "-").replace(".", "-") + "-" + "".join(random.choice(alphabet) for _ in range(5))
    return name


def deployment(name: str, images: list[str], port: int = -1, replicas: int = 1,
               command: list[str] | None = None) -> dict[str, Any]:
    """``kubectl create deployment NAME --image=... [--port] [--replicas] [-- command]`` (create_deployment.go)."""
    if not images:
        raise ClientError('required flag(s) "image" not set')
    if len(images) > 1 and command:
        raise ClientError("cannot specify multiple --image options and command")
    labels = {"app": name}
    containers = [_container(_image_container_name(i), i) for i in images]
    if command:
        containers[0] = _container(containers[0]["name"], images[0], command=command)
    if port >= 0:
        c = containers[0]
        containers[0] = _container(c["name"], c["image"], command=c.get("command"), ports=[{"containerPort": port}])
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": _meta(name, labels=dict(labels)),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": _meta_unnamed(labels=dict(labels)), "spec": {"containers": containers}},
            "strategy": {},
        },
        "status": {},
    }


def _meta_unnamed(**extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"creationTimestamp": None}
    for key in ("labels", "annotations"):
        if extra.get(key):
            meta[key] = extra[key]
    return meta


def _job_template(name: str, image: str, command: list[str] | None, restart: str) -> dict[str, Any]:
    return {"metadata": _meta_unnamed(),
            "spec": {"containers": [_container(name, image, command=command)], "restartPolicy": restart}}


def job(name: str, image: str, command: list[str] | None = None) -> dict[str, Any]:
    """``kubectl create job NAME --image=... [-- command]`` (create_job.go)."""
    return {"kind": "Job", "apiVersion": "batch/v1", "metadata": _meta(name),
            "spec": {"template": _job_template(name, image, command, "Never")}, "status": {}}


def job_from_cronjob(name: str, cronjob: dict[str, Any]) -> dict[str, Any]:
    """``kubectl create job NAME --from=cronjob/CJ``: the CronJob's job template, owned by it, annotated
    ``cronjob.kubernetes.io/instantiate: manual``."""
    import copy

    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = {"cronjob.kubernetes.io/instantiate": "manual", **(tmeta.get("annotations") or {})}
    owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob["metadata"]["name"],
             "uid": cronjob["metadata"].get("uid", ""), "controller": True}
    spec = copy.deepcopy(template.get("spec") or {})
    pod_template = spec.get("template")
    if isinstance(pod_template, dict):  # a typed ObjectMeta always prints its creationTimestamp
        pod_template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return {"kind": "Job", "apiVersion": "batch/v1",
            "metadata": _meta(name, labels=tmeta.get("labels"), annotations=annotations, ownerReferences=[owner]),
            "spec": spec, "status": {}}


def cronjob(name: str, image: str, schedule: str, restart: str = "", command: list[str] | None = None) -> dict[str, Any]:
    """``kubectl create cronjob NAME --image=... --schedule=... [--restart] [-- command]`` (create_cronjob.go)."""
    return {
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": _meta(name),
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"metadata": _meta(name),
                            "spec": {"template": _job_template(name, image, command, restart or "OnFailure")}},
        },
        "status": {},
    }


def serviceaccount(name: str) -> dict[str, Any]:
    """``kubectl create serviceaccount NAME``."""
    return {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": _meta(name)}


# create_ingress.go's rule syntax: host/path=svcname:svcport[,tls[=secret]]
_INGRESS_RULE = (r"^(?P<host>[\w\*\-\.]*)(?P<path>/[^,=\n]*)=(?P<svcname>[\w\-]+):(?P<svcport>[\w\-]+)"
                 r"(,(?P<istls>tls)=?(?P<secretname>[\w\-]+)?)?$")


def _backend(service: str) -> dict[str, Any]:
    parts = service.split(":")
    port: dict[str, Any] = {}
    if parts[1].lstrip("-").isdigit() and len(parts[1]) < 11:  # intstr.Parse: an int32 or a name
        port["number"] = int(parts[1])
    else:
        port["name"] = parts[1]
    return {"service": {"name": parts[0], "port": port}}


def ingress(name: str, rules: list[str], default_backend: str = "", class_name: str = "",
            annotations: list[str] | None = None) -> dict[str, Any]:
    """``kubectl create ingress NAME --rule=... [--default-backend] [--class] [--annotation]``, with its
    validation messages (create_ingress.go)."""
    import re

    annotations = annotations or []
    if not default_backend and not rules:
        raise ClientError("not enough information provided: every ingress has to either specify a default-backend "
                          "(which catches all traffic) or a list of rules (which catch specific paths)")
    for rule in rules:
        if not re.match(_INGRESS_RULE, rule):
            raise ClientError(f"rule {rule} is invalid and should be in format host/path=svcname:svcport[,tls[=secret]]")
    for a in annotations:
        if "=" not in a:
            raise ClientError(f"annotation {a} is invalid and should be in format key=[value]")
    if default_backend and len(default_backend.split(":")) != 2:
        raise ClientError("default-backend should be in format servicename:serviceport")
    spec: dict[str, Any] = {}
    if class_name:
        spec["ingressClassName"] = class_name
    if default_backend:
        spec["defaultBackend"] = _backend(default_backend)
    tls: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rule in rules:
        parts = rule.split(",")
        if len(parts) != 2:
            continue
        host = rule.split("/", 1)[0]
        secret_parts = parts[1].split("=")
        secret = secret_parts[1] if len(secret_parts) > 1 else ""
        if host in seen:
            continue
        idx = next((i for i, t in enumerate(tls) if t.get("secretName", "") == secret), -1)
        seen.add(host)
        if idx > -1:
            tls[idx].setdefault("hosts", []).append(host)
            continue
        entry: dict[str, Any] = {}
        if host:
            entry["hosts"] = [host]
        if secret:
            entry["secretName"] = secret
        if entry:
            tls.append(entry)
    if tls:
        spec["tls"] = tls
    out_rules: list[dict[str, Any]] = []
    for rule in rules:
        host, path_svc = rule.split(",")[0].split("/", 1)
        path, service = path_svc.split("=")[0], path_svc.split("=")[1]
        path = "/" + path
        path_type = "Exact"
        if path.endswith("*"):
            path_type, path = "Prefix", path[:-1]
        http_path = {"path": path, "pathType": path_type, "backend": _backend(service)}
        found = next((r for r in out_rules if r.get("host", "") == host), None)
        if found is not None:
            found["http"]["paths"].append(http_path)
            continue
        entry = {"host": host} if host else {}
        entry["http"] = {"paths": [http_path]}
        out_rules.append(entry)
    if out_rules:
        spec["rules"] = out_rules
    ann = {}
    for a in annotations:
        k, _, v = a.partition("=")
        ann[k] = v
    return {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1", "metadata": _meta(name, annotations=ann),
            "spec": spec, "status": {"loadBalancer": {}}}


# ------------------------------------------------------------------------------------------------ run

RESTART_POLICIES = ("Always", "OnFailure", "Never")


def parse_labels(spec: str) -> dict[str, str]:
    """``--labels a=b,c=d`` as kubectl run reads it (``unexpected label spec: x``)."""
    out: dict[str, str] = {}
    for part in spec.split(","):
        k, sep, v = part.partition("=")
        if not sep or "=" in v:
            raise ClientError(f"unexpected label spec: {part}")
        out[k] = v
    return out


def parse_env(specs: list[str]) -> list[dict[str, Any]]:
    """``--env A=b`` (repeatable) -> EnvVar list (``invalid env: A``)."""
    out: list[dict[str, Any]] = []
    for spec in specs:
        k, sep, v = spec.partition("=")
        if not sep or not k:
            raise ClientError(f"invalid env: {spec}")
        out.append({"name": k, "value": v} if v else {"name": k})
    return out


def run_pod(name: str, image: str, *, labels: str = "", annotations: list[str] | None = None,
            env: list[str] | None = None, port: str = "", restart: str = "Always", command: bool = False,
            args: list[str] | None = None, pull_policy: str = "", privileged: bool = False, stdin: bool = False,
            tty: bool = False, leave_stdin_open: bool = False) -> dict[str, Any]:
    """``kubectl run NAME --image=...``'s Pod (kubectl's run generator, pkg/generate/versioned/run.go)."""
    if restart not in RESTART_POLICIES:
        raise ClientError(f"invalid restart policy: {restart}")
    pod_labels = parse_labels(labels) if labels else {"run": name}
    ann: dict[str, str] = {}
    for a in annotations or []:
        k, sep, v = a.partition("=")
        if not sep:
            raise ClientError(f"invalid annotation spec: {a}")
        ann[k] = v
    ports = None
    if port:
        ports = [{"containerPort": _atoi(port)}]
    container = _container(name, image, command=list(args or []) if command else None,
                           args=None if command else list(args or []), ports=ports, env=parse_env(env or []),
                           pull_policy=pull_policy, privileged=privileged, stdin=stdin,
                           stdin_once=stdin and not leave_stdin_open, tty=tty)
    return {"kind": "Pod", "apiVersion": "v1", "metadata": _meta(name, labels=pod_labels, annotations=ann),
            "spec": {"containers": [container], "restartPolicy": restart, "dnsPolicy": "ClusterFirst"},
            "status": {}}


def _atoi(s: str) -> int:
    """Go's strconv.Atoi with its error text."""
    try:
        if not s or s.strip() != s or "_" in s:
            raise ValueError
        return int(s, 10)
    except ValueError:
        raise ClientError(f'strconv.Atoi: parsing "{s}": invalid syntax') from None


def run_service(name: str, port: str, selector: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The Service ``kubectl run --expose --port`` creates in front of the pod (labelled with ``--labels`` only)."""
    p = _atoi(port)
    return {"kind": "Service", "apiVersion": "v1", "metadata": _meta(name, labels=dict(labels or {})),
            "spec": {"ports": [{"protocol": "TCP", "port": p, "targetPort": p}], "selector": dict(selector)},
            "status": {"loadBalancer": {}}}
