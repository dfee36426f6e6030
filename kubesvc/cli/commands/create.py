"""`kubesvc create -f` and the `create service|namespace` generators."""

from __future__ import annotations

from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import (
    DryRunOpt,
    FilenameOpt,
    NamespaceOpt,
    OutputOpt,
    RecursiveOpt,
    StoreOpt,
    ValidateOpt,
)
from kubesvc.errors import ClientError, Invalid

app = typer.Typer(help="Create a resource from a file or from stdin, or with a generator.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def create(
    ctx: typer.Context,
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
    dry_run: DryRunOpt = "none",
    validate: ValidateOpt = "strict",
    store: StoreOpt = None,
) -> None:
    """Create a resource from a file or from stdin: kubesvc create -f FILE|DIR|-."""
    if ctx.invoked_subcommand is not None:
        return
    from kubesvc.cli import resources

    mode = common.dry_run_mode(dry_run)
    vmode = common.validate_mode(validate)
    out_fmt = common.check_output(output)
    ns, explicit = common.namespace(namespace)
    items = resources.load(filename, recursive, ns, explicit, "create")
    if mode == "client":  # kubectl's client dry run never talks to the server: nothing read, nothing written
        from kubesvc.cli import dryrun

        common.each_object(items, lambda obj: dryrun.create(obj, vmode), lambda e: "creating", mode, out_fmt)
        return
    reg = common.registry(store)
    common.each_object(
        items, lambda obj: reg.create(obj, dry_run=mode != "none", validate=vmode, manager="kubectl-create"), lambda e: "creating", mode, out_fmt
    )


service_app = typer.Typer(help="Create a service using a specified subcommand.")
app.add_typer(service_app, name="service")
app.add_typer(service_app, name="svc", hidden=True)

TcpOpt = Annotated[list[str] | None, typer.Option("--tcp", help="Port pairs <port>:<targetPort>; can be repeated.")]


def _generate(kind: str, name: str, tcp: list[str] | None, node_port: int | None, cluster_ip: str | None,
              external_name: str | None, namespace: str | None, output: str | None, dry_run: str,
              store: str | None) -> None:
    from kubesvc.api import expose as exposelib

    common.check_output(output)  # kubectl: the printer (Complete) before the ports (Validate)
    ports = [p for value in (tcp or []) for p in exposelib.split_string_slice(value)]
    svc = exposelib.create_service(kind, name, tcp=ports, node_port=node_port, cluster_ip=cluster_ip,
                                   external_name=external_name)
    type_word = {"clusterip": "ClusterIP", "nodeport": "NodePort", "loadbalancer": "LoadBalancer",
                 "externalname": "ExternalName"}[kind]
    try:
        _store_generated(svc, namespace, output, dry_run, store)
    except Invalid as e:
        raise ClientError(f"failed to create {type_word} service: {e.status_message()}") from None


@service_app.command("clusterip")
def create_clusterip(
    name: str,
    tcp: TcpOpt = None,
    clusterip: Annotated[str | None, typer.Option("--clusterip", help="Assign your own ClusterIP or set to 'None' for a 'headless' service.")] = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a ClusterIP service."""
    _generate("clusterip", name, tcp, None, clusterip, None, namespace, output, dry_run, store)


@service_app.command("nodeport")
def create_nodeport(
    name: str,
    tcp: TcpOpt = None,
    node_port: Annotated[int | None, typer.Option("--node-port", help="Port used to expose the service on each node.")] = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a NodePort service."""
    _generate("nodeport", name, tcp, node_port, None, None, namespace, output, dry_run, store)


@service_app.command("loadbalancer")
def create_loadbalancer(
    name: str, tcp: TcpOpt = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a LoadBalancer service."""
    _generate("loadbalancer", name, tcp, None, None, None, namespace, output, dry_run, store)


@service_app.command("externalname")
def create_externalname(
    name: str,
    external_name: Annotated[str | None, typer.Option("--external-name", help="External name of the service.")] = None,
    tcp: TcpOpt = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create an ExternalName service."""
    _generate("externalname", name, tcp, None, None, external_name, namespace, output, dry_run, store)


@app.command("namespace")
def create_namespace(
    name: str, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a namespace with the specified name."""
    mode = common.dry_run_mode(dry_run)
    out_fmt = common.check_output(output)
    if mode == "client":  # as kubectl generates it, typed; the store is not read
        generated = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": None},
                     "spec": {}, "status": {}}
        if out_fmt:
            common.print_objects([generated], out_fmt, True, typed=True)
        else:
            common.out(f"namespace/{name} created (dry run)\n")
        return
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    result = common.registry(store).create(obj, dry_run=mode != "none", manager="kubectl-create")
    if out_fmt:
        common.print_objects([result.object], out_fmt, True)
    else:
        common.out(f"namespace/{name} created{common.dry_run_suffix(mode)}\n")


app.command("ns", hidden=True)(create_namespace)


secret_app = typer.Typer(help="Create a secret using a specified subcommand.")
app.add_typer(secret_app, name="secret")

FromLiteralOpt = Annotated[list[str] | None, typer.Option("--from-literal", help="key=value; can be repeated.")]
FromFileOpt = Annotated[list[str] | None, typer.Option("--from-file", help="[key=]path; can be repeated.")]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(16 * 1024 * 1024)
    except OSError as e:
        raise ClientError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None


def _files(specs: list[str] | None) -> list[tuple[str, bytes]]:
    return [(spec, _read(spec.partition("=")[2] if "=" in spec else spec)) for spec in specs or []]


def _store_generated(obj: dict, namespace: str | None, output: str | None, dry_run: str, store: str | None) -> None:
    """A generated object: printed as kubectl prints it with --dry-run=client, else created."""
    mode, out_fmt = common.dry_run_mode(dry_run), common.check_output(output)
    ns, explicit = common.namespace(namespace)
    common.print_or_create(obj, ns, mode, out_fmt, "created", store, explicit=explicit)


@secret_app.command("tls")
def create_secret_tls(
    name: str,
    cert: Annotated[str, typer.Option("--cert", help="Path to PEM encoded public key certificate.")],
    key: Annotated[str, typer.Option("--key", help="Path to private key associated with given certificate.")],
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a TLS secret (kubernetes.io/tls) from a certificate and its key, e.g. for an Ingress."""
    from kubesvc.api import generators

    _store_generated(generators.tls_secret(name, _read(cert), _read(key)), namespace, output, dry_run, store)


@secret_app.command("generic")
def create_secret_generic(
    name: str, from_literal: FromLiteralOpt = None, from_file: FromFileOpt = None,
    type_: Annotated[str | None, typer.Option("--type", help="The type of secret to create.")] = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a secret from literal values or files."""
    from kubesvc.api import generators

    obj = generators.generic_secret(name, from_literal or [], _files(from_file), type_ or "")
    _store_generated(obj, namespace, output, dry_run, store)


@app.command("configmap")
def create_configmap(
    name: str, from_literal: FromLiteralOpt = None, from_file: FromFileOpt = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a config map from literal values or files."""
    from kubesvc.api import generators

    obj = generators.configmap(name, from_literal or [], _files(from_file))
    _store_generated(obj, namespace, output, dry_run, store)


app.command("cm", hidden=True)(create_configmap)


# ------------------------------------------------------------- deployment, job, cronjob, ingress, serviceaccount

CommandArg = Annotated[list[str] | None, typer.Argument(help="After --: the command (and its args) of the container.",
                                                        show_default=False)]


def _create_typed(obj: dict, word: str, namespace: str | None, output: str | None, dry_run: str,
                  store: str | None) -> None:
    """A generator's object, printed (--dry-run=client) or created; a server-side failure reads as kubectl's
    ``failed to create <word>: <status message>``."""
    from kubesvc.errors import KubesvcError

    try:
        _store_generated(obj, namespace, output, dry_run, store)
    except Invalid as e:
        raise ClientError(f"failed to create {word}: {e.status_message()}") from None
    except ClientError:
        raise
    except KubesvcError as e:
        if e.code in (0, 500, 503):
            raise
        raise ClientError(f"failed to create {word}: {e.message}") from None


@app.command("deployment")
def create_deployment(
    name: str,
    command: CommandArg = None,
    image: Annotated[list[str] | None, typer.Option("--image", help="Image names to run. A deployment can have multiple images set for multi-container pod.")] = None,
    port: Annotated[int, typer.Option("--port", help="The containerPort that this deployment exposes.")] = -1,
    replicas: Annotated[int, typer.Option("--replicas", "-r", help="Number of replicas to create. Default is 1.")] = 1,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a deployment with the specified name: kubesvc create deployment NAME --image=image -- [COMMAND] [args...]."""
    from kubesvc.api import expose as exposelib
    from kubesvc.api import generators

    common.check_output(output)
    images = [i for value in (image or []) for i in exposelib.split_string_slice(value)]
    obj = generators.deployment(name, images, port=port, replicas=replicas, command=command)
    _create_typed(obj, "deployment", namespace, output, dry_run, store)


app.command("deploy", hidden=True)(create_deployment)


@app.command("job")
def create_job(
    name: str,
    command: CommandArg = None,
    image: Annotated[str | None, typer.Option("--image", help="Image name to run.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="The name of the resource to create a Job from (only cronjob is supported).")] = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a job with the specified name: kubesvc create job NAME --image=image [--from=cronjob/name] -- [COMMAND] [args...]."""
    from kubesvc.api import generators

    common.check_output(output)
    if bool(image) == bool(from_):
        raise ClientError("either --image or --from must be specified")
    if command and from_:
        raise ClientError("cannot specify --from and command")
    if from_:
        from kubesvc.api.kinds import resolve

        word, sep, source = from_.partition("/")
        if not sep or not source:
            raise ClientError(f"unknown object type (expected TYPE/NAME): {from_}")  # pragma: no cover - kubectl's
        kind = resolve(word)
        ns, _ = common.namespace(namespace)
        live = common.read_object(common.read_registry(store), kind.kind, ns, source)
        if kind.kind != "CronJob":
            raise ClientError(f"from must be an existing cronjob: {kind.kind}")
        obj = generators.job_from_cronjob(name, live)
    else:
        obj = generators.job(name, image or "", command)
    _create_typed(obj, "job", namespace, output, dry_run, store)


@app.command("cronjob")
def create_cronjob(
    name: str,
    command: CommandArg = None,
    image: Annotated[str | None, typer.Option("--image", help="Image name to run.")] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="A schedule in the Cron format the job should be run with.")] = None,
    restart: Annotated[str, typer.Option("--restart", help="job's restart policy. supported values: OnFailure, Never")] = "",
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a cronjob with the specified name: kubesvc create cronjob NAME --image=image --schedule='0/5 * * * ?' -- [COMMAND] [args...]."""
    from kubesvc.api import generators

    common.check_output(output)
    if not image:
        raise ClientError('required flag(s) "image" not set')
    if not schedule:
        raise ClientError('required flag(s) "schedule" not set')
    _create_typed(generators.cronjob(name, image, schedule, restart, command), "cronjob", namespace, output, dry_run, store)


app.command("cj", hidden=True)(create_cronjob)


@app.command("ingress")
def create_ingress(
    name: str,
    rule: Annotated[list[str] | None, typer.Option("--rule", help="Rule in format host/path=service:port[,tls=secretname]. Paths ending in '*' are pathType=Prefix.")] = None,
    default_backend: Annotated[str, typer.Option("--default-backend", help="Default service for backend, in format of svcname:port")] = "",
    class_: Annotated[str, typer.Option("--class", help="Ingress Class to be used")] = "",
    annotation: Annotated[list[str] | None, typer.Option("--annotation", help="Annotation to insert in the ingress object, in the format annotation=value")] = None,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create an ingress with the specified name: kubesvc create ingress NAME --rule=host/path=service:port[,tls[=secret]]."""
    from kubesvc.api import generators

    common.check_output(output)
    obj = generators.ingress(name, rule or [], default_backend, class_, annotation or [])
    _create_typed(obj, "ingress", namespace, output, dry_run, store)


app.command("ing", hidden=True)(create_ingress)


@app.command("serviceaccount")
def create_serviceaccount(
    name: str,
    namespace: NamespaceOpt = None, output: OutputOpt = None, dry_run: DryRunOpt = "none", store: StoreOpt = None,
) -> None:
    """Create a service account with the specified name."""
    from kubesvc.api import generators

    common.check_output(output)
    _create_typed(generators.serviceaccount(name), "serviceaccount", namespace, output, dry_run, store)


app.command("sa", hidden=True)(create_serviceaccount)
