"""Checks of rendered manifests that the Kubernetes schemas cannot make, for scripts/chart-check.sh.

usage: check_manifests.py [--namespaced | --third-party] [--access TABLE] FILE...

- Every Deployment runs locked down: non-root, the RuntimeDefault seccomp profile, no privilege
  escalation, a read-only root file system, every capability dropped, resources and probes set.
- RBAC is least privilege: no wildcards, nothing that grants more RBAC or impersonation,
  Secrets only by name (get), the gateway only lists and watches Topics; with --namespaced, no
  ClusterRole but the CRDs' one.
- Kinds outside Kubernetes' own schemas (Prometheus Operator's ServiceMonitor and PodMonitor,
  kind's Cluster) are checked against the few fields Tributary writes, unknown fields refused.
  With --third-party (the brokers and LocalStack of scripts/kind/) only this check applies.
- With --access TABLE: each request of TABLE (scripts/chart/access.txt) is allowed or denied by
  the rendering's Roles, ClusterRoles and bindings as the table says, evaluated as Kubernetes'
  RBAC authorizer would (the local API server authorizes everything, so it cannot tell).

Prints one line per problem and exits 1 if there is any. Runs in the venv of
scripts/chart-tools.sh (PyYAML and jsonschema come with kubernetes-validate).
"""

import sys

import jsonschema
import yaml

NAME = {"type": "string", "minLength": 1}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": NAME, "namespace": NAME, "labels": LABELS, "annotations": LABELS},
    "additionalProperties": False,
}
SELECTOR = {
    "type": "object",
    "required": ["matchLabels"],
    "properties": {"matchLabels": LABELS},
    "additionalProperties": False,
}
ENDPOINT = {
    "type": "object",
    "required": ["port"],
    "properties": {
        "port": NAME,
        "path": {"type": "string", "pattern": "^/"},
        "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
    },
    "additionalProperties": False,
}
NAMESPACE_SELECTOR = {
    "type": "object",
    "properties": {
        "any": {"type": "boolean"},
        "matchNames": {"type": "array", "items": NAME, "minItems": 1},
    },
    "additionalProperties": False,
}


def custom_resource(api_version, kind, spec):
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


# The subset of monitoring.coreos.com/v1 and kind.x-k8s.io/v1alpha4 that is written here.
SCHEMAS = {
    "ServiceMonitor": custom_resource(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": SELECTOR,
                "namespaceSelector": NAMESPACE_SELECTOR,
                "endpoints": {"type": "array", "items": ENDPOINT, "minItems": 1},
            },
            "additionalProperties": False,
        },
    ),
    "PodMonitor": custom_resource(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": SELECTOR,
                "namespaceSelector": NAMESPACE_SELECTOR,
                "podMetricsEndpoints": {"type": "array", "items": ENDPOINT, "minItems": 1},
            },
            "additionalProperties": False,
        },
    ),
    "Cluster": {
        "type": "object",
        "required": ["apiVersion", "kind", "nodes"],
        "properties": {
            "apiVersion": {"const": "kind.x-k8s.io/v1alpha4"},
            "kind": {"const": "Cluster"},
            "name": NAME,
            "nodes": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["role"],
                    "properties": {
                        "role": {"enum": ["control-plane", "worker"]},
                        "image": NAME,
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
}

# Verbs that would let the operator give itself (or anyone) more than this list.
DANGEROUS_VERBS = {"*", "escalate", "bind", "impersonate"}


def check_deployment(doc, problems):
    pod = doc["spec"]["template"]["spec"]
    where = f"Deployment {doc['metadata']['name']}"
    pod_security = pod.get("securityContext", {})
    if pod_security.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
    for container in pod["containers"]:
        at = f"{where} container {container['name']}"
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: readOnlyRootFilesystem is not true")
        if "ALL" not in security.get("capabilities", {}).get("drop", []):
            problems.append(f"{at}: capabilities are not all dropped")
        if not container.get("resources", {}).get("requests"):
            problems.append(f"{at}: no resource requests")
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in container:
                problems.append(f"{at}: no {probe}")


def check_role(doc, namespaced, problems):
    name = doc["metadata"]["name"]
    where = f"{doc['kind']} {name}"
    if namespaced and doc["kind"] == "ClusterRole" and not name.endswith("-operator-crds"):
        problems.append(f"{where}: a ClusterRole in namespaces mode (only the CRDs' one belongs)")
    for rule in doc.get("rules", []):
        verbs = set(rule.get("verbs", []))
        resources = set(rule.get("resources", []))
        if "*" in resources or "*" in rule.get("apiGroups", []):
            problems.append(f"{where}: a wildcard in {rule}")
        if verbs & DANGEROUS_VERBS:
            problems.append(f"{where}: verbs {sorted(verbs & DANGEROUS_VERBS)} in {rule}")
        if "secrets" in resources and verbs - {"get"}:
            problems.append(f"{where}: Secrets beyond get (by name): {sorted(verbs)}")
        if name.endswith("-gateway") and (resources != {"topics", "streams"} or verbs != {"list", "watch"}):
            problems.append(f"{where}: the gateway needs only list and watch on topics and streams: {rule}")


def allows(docs, account, verb, resource, namespace):
    """Whether RBAC in `docs` lets the service account whose name ends in `-<account>` make the
    request: a RoleBinding in `namespace` or a ClusterRoleBinding to a role with a matching rule."""
    name, _, subresource = resource.partition("/")
    plural, _, group = name.partition(".")
    wanted = f"{plural}/{subresource}" if subresource else plural
    roles = {}
    for d in docs:
        if d["kind"] in ("Role", "ClusterRole"):
            roles[(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])] = d
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if binding["kind"] == "RoleBinding" and binding["metadata"].get("namespace") != namespace:
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"].endswith(f"-{account}")
            for s in binding.get("subjects", [])
        ):
            continue
        ref = binding["roleRef"]
        role_namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], role_namespace, ref["name"]))
        for rule in (role or {}).get("rules", []):
            if (
                group in rule.get("apiGroups", [])
                and wanted in rule.get("resources", [])
                and verb in rule.get("verbs", [])
                and not rule.get("resourceNames")
            ):
                return True
    return False


def check_access(path, table, problems):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    checked = 0
    with open(table) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            account, verb, resource, namespace, expected = line
            namespace = None if namespace == "-" else namespace
            got = "yes" if allows(docs, account, verb, resource, namespace) else "no"
            checked += 1
            if got != expected:
                where = f"in {namespace}" if namespace else "cluster-wide"
                problems.append(f"{account} {verb} {resource} {where}: {got}, expected {expected}")
    print(f"access {path}: {checked} requests checked against {table}")


def check_file(path, namespaced, policies, problems):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {}
    for doc in docs:
        kind = doc.get("kind")
        kinds[kind] = kinds.get(kind, 0) + 1
        schema = SCHEMAS.get(kind)
        if schema is not None:
            for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
                at = "/".join(str(p) for p in error.absolute_path) or "(top)"
                problems.append(f"{path}: {kind} at {at}: {error.message}")
        if policies and kind == "Deployment":
            check_deployment(doc, problems)
        if policies and kind in ("Role", "ClusterRole"):
            check_role(doc, namespaced, problems)
    return kinds


def main(argv):
    namespaced = "--namespaced" in argv
    policies = "--third-party" not in argv
    table = argv[argv.index("--access") + 1] if "--access" in argv else None
    paths = [a for a in argv if not a.startswith("--") and a != table]
    problems = []
    for path in paths:
        before = len(problems)
        kinds = check_file(path, namespaced, policies, problems)
        if table:
            check_access(path, table, problems)
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        state = "ok" if len(problems) == before else "FAILED"
        print(f"{state:6} {path}: {summary}")
    for problem in problems:
        print(f"  problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
