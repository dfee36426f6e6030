"""Node, ServiceAccount, quotas, PDB, PriorityClass, HPA, RBAC and EndpointSlice: through kubesvc's CLI, and one
kubectl round trip per API group against a live `kubesvc apiserver` (discovery, create, get columns, errors)."""

from __future__ import annotations

import json

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl
from tests.cli.conftest import cli, ks, store_path  # noqa: F401  (fixtures)


def create(run, obj):
    return run("create", "-f", "-", input=json.dumps(obj))


def test_node_is_the_machine_with_no_component_running(cli):
    lines = cli("get", "nodes", "-o", "wide").out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert lines[0].split()[5:9] == ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION"]
    cells = lines[1].split()
    assert cells[:3] == ["kubesvc-node", "Ready", "control-plane"] and cells[4] == "v1.32.0+kubesvc"
    assert cells[5:7] == ["127.0.0.1", "<none>"]
    node = json.loads(cli("get", "no", "kubesvc-node", "-o", "json").out)
    import os

    assert node["status"]["capacity"]["cpu"] == str(os.cpu_count())
    assert node["status"]["capacity"]["pods"] == "110" and node["status"]["capacity"]["memory"].endswith("Ki")
    assert [a["type"] for a in node["status"]["addresses"]] == ["InternalIP", "Hostname"]
    assert node["status"]["nodeInfo"]["kernelVersion"] == os.uname().release


def test_default_service_accounts_in_builtin_and_new_namespaces(ks):
    assert ks("create", "namespace", "team").code == 0
    out = ks("get", "sa", "-A").out.splitlines()
    assert out[0].split() == ["NAMESPACE", "NAME", "SECRETS", "AGE"]
    assert sorted(line.split()[0] for line in out[1:]) == ["default", "kube-node-lease", "kube-public", "kube-system", "team"]
    assert ks("delete", "namespace", "team").code == 0
    assert "team" not in ks("get", "serviceaccounts", "-A").out


def test_pdb_quota_limits_priorityclass_hpa(cli):
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
           "spec": {"minAvailable": 1, "maxUnavailable": "50%", "selector": {"matchLabels": {"a": "b"}}}}
    r = create(cli, pdb)
    assert 'The PodDisruptionBudget "p" is invalid: spec: Invalid value' in r.err
    assert "minAvailable and maxUnavailable cannot be both set" in r.err
    del pdb["spec"]["maxUnavailable"]
    assert create(cli, pdb).code == 0
    assert cli("get", "pdb").out.splitlines()[1].split()[:4] == ["p", "1", "N/A", "0"]

    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
             "spec": {"hard": {"pods": "-1"}}}
    assert 'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0' in create(cli, quota).err
    quota["spec"]["hard"] = {"pods": "10", "limits.cpu": "2"}
    assert create(cli, quota).code == 0
    line = cli("get", "quota").out.splitlines()[1]
    assert "pods: 0/10" in line and "limits.cpu: 0/2" in line

    lr = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
          "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}}]}}
    assert "min value 2 is greater than max value 1" in create(cli, lr).err
    lr["spec"]["limits"][0]["min"] = {"cpu": "100m"}
    assert create(cli, lr).code == 0
    item = json.loads(cli("get", "limits", "lr", "-o", "json").out)["spec"]["limits"][0]
    assert item["default"] == {"cpu": "1"} and item["defaultRequest"] == {"cpu": "1"}
    assert cli("get", "limitranges").out.splitlines()[0].split() == ["NAME", "CREATED", "AT"]

    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-x"}, "value": 5}
    assert "priority class names with 'system-' prefix are reserved" in create(cli, pc).err
    pc["metadata"]["name"] = "high"
    assert create(cli, pc).code == 0
    assert cli("get", "pc").out.splitlines()[1].split()[:3] == ["high", "5", "false"]
    assert json.loads(cli("get", "pc", "high", "-o", "json").out)["preemptionPolicy"] == "PreemptLowerPriority"
    pc["value"] = 6
    assert "value: Forbidden: may not be changed in an update." in cli("apply", "-f", "-", input=json.dumps(pc)).err

    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 3, "maxReplicas": 2}}
    assert "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`" in create(cli, hpa).err
    hpa["spec"]["maxReplicas"] = 5
    assert create(cli, hpa).code == 0
    assert cli("get", "hpa").out.splitlines()[1].split()[:6] == ["h", "Deployment/web", "cpu:", "<unknown>/80%", "3", "5"]


def test_rbac_and_endpointslice(ks):
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}
    assert "rules[0].verbs: Required value: verbs must contain at least one value" in create(ks, role).err
    role["rules"][0]["verbs"] = ["get"]
    assert create(ks, role).code == 0
    rb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
          "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "jane"}]}
    assert create(ks, rb).code == 0
    live = json.loads(ks("get", "rolebinding", "rb", "-o", "json").out)
    assert live["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert live["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"
    rb["roleRef"]["name"] = "other"
    assert "roleRef: Invalid value" in ks("apply", "-f", "-", input=json.dumps(rb)).err
    crb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "c"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}
    assert 'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"' in create(ks, crb).err
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "ext-1"},
          "addressType": "IPv4", "endpoints": [{"addresses": ["not-an-ip"]}], "ports": [{"port": 80}]}
    assert 'endpoints[0].addresses[0]: Invalid value: "not-an-ip": must be a valid IPv4 address' in create(ks, es).err
    es["endpoints"][0]["addresses"] = ["10.1.2.3"]
    assert create(ks, es).code == 0
    assert ks("get", "endpointslices").out.splitlines()[1].split()[:4] == ["ext-1", "IPv4", "80", "10.1.2.3"]


MANIFESTS = {
    "apps": ("statefulsets.apps", {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
             "spec": {"selector": {"matchLabels": {"app": "web"}}, "serviceName": "web",
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    "batch": ("jobs.batch", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
              "spec": {"template": {"spec": {"restartPolicy": "Never",
                                             "containers": [{"name": "c", "image": "perl"}]}}}}),
    "policy": ("poddisruptionbudgets.policy", {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "p"}, "spec": {"maxUnavailable": 1}}),
    "autoscaling": ("horizontalpodautoscalers.autoscaling", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}}),
    "rbac": ("roles.rbac.authorization.k8s.io", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    "discovery": ("endpointslices.discovery.k8s.io", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}),
    "core": ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot"}}),
}


@needs_kubectl
def test_kubectl_api_resources_lists_the_new_kinds(api: Api):
    r = api.kubectl("api-resources", "--no-headers")
    assert r.code == 0, r.err
    rows = {line.split()[0]: line.split() for line in r.out.splitlines()}
    assert rows["statefulsets"][1:3] == ["sts", "apps/v1"]
    assert rows["nodes"][1:4] == ["no", "v1", "false"]
    assert rows["priorityclasses"][1:4] == ["pc", "scheduling.k8s.io/v1", "false"]
    assert rows["horizontalpodautoscalers"][1:3] == ["hpa", "autoscaling/v2"]
    for plural in ("cronjobs", "jobs", "daemonsets", "poddisruptionbudgets", "resourcequotas", "limitranges", "roles",
                   "clusterrolebindings", "podtemplates", "serviceaccounts", "endpointslices"):
        assert plural in rows, plural
    r = api.kubectl("get", "nodes")
    assert r.code == 0 and r.out.splitlines()[1].split()[:3] == ["kubesvc-node", "Ready", "control-plane"], r
    r = api.kubectl("expose", "node", "kubesvc-node", "--port", "80")
    assert r.code == 1 and "cannot expose a Node" in r.err, r


@needs_kubectl
def test_kubectl_round_trip_per_group(api: Api, ns: str):
    for group, (resource, obj) in MANIFESTS.items():
        r = api.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(obj))
        assert r.code == 0, (group, r.err)
        r = api.kubectl("-n", ns, "get", resource, obj["metadata"]["name"], "-o", "json")
        assert r.code == 0, (group, r.err)
        assert json.loads(r.out)["metadata"]["name"] == obj["metadata"]["name"]
        mine = api.ks("-n", ns, "get", resource, obj["metadata"]["name"])
        theirs = api.kubectl("-n", ns, "get", resource, obj["metadata"]["name"])
        assert theirs.out.splitlines()[0].split() == mine.out.splitlines()[0].split(), group
        r = api.kubectl("-n", ns, "delete", resource, obj["metadata"]["name"])
        assert r.code == 0, (group, r.err)
    bad = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
           "spec": {"schedule": "nope", "jobTemplate": {"spec": {"template": {"spec": {
               "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    r = api.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(bad))
    assert r.code == 1 and 'spec.schedule: Invalid value: "nope": expected exactly 5 fields, found 1: [nope]' in r.err
    r = api.kubectl("-n", ns, "get", "sa", "default")
    assert r.code == 0, r.err
