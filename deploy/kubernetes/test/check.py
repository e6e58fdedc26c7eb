"""Offline checks of deploy/kubernetes (run by scripts/test-kubernetes).

1. Every manifest, and every kustomization's output, passes the Kubernetes JSON schemas
   (kubernetes-validate, strict: unknown fields fail) of the oldest and the newest
   Kubernetes version it claims.
2. The MutatingAdmissionPolicy's CEL is evaluated as written (cel-python, with the
   Object.* type names as constructors of plain objects), its result merged into sample
   pods with server-side apply's rules for the Pod's keyed lists (read from the same
   schemas), and the bindings' selectors decide which pods it applies to. Each resulting
   pod must carry every file of the default CDI device of a live lxcfs-rs mount (the
   argument), exactly once, read-only, from hostPath volumes of type File/Directory, in
   every container, only when opted in, with no destination runc refuses; and it must
   still pass the Pod schema.

What this cannot show: the API server's CEL type-checker (cel-python checks no types
against the schema, which the Pod-schema validation of the result stands in for), and
the kubelet and runtimes acting on the pod (the node-level tests do that part).

3. The device plugin's DaemonSet and example pod: the resource the pod requests is the
   CDI spec's kind (the plugin's default resource name), the plugin's pod reaches the
   kubelet's device plugin directory and the CDI spec directories, and neither the
   example pod nor the main DaemonSet has a volume.

Usage: check.py CDI_SPEC_JSON SERVED_MOUNTPOINT
"""

import copy
import glob
import json
import os
import sys

import celpy
import jsonpatch
import kubernetes_validate
import yaml
from celpy import celtypes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # deploy/kubernetes
MOUNTPOINT = "/var/lib/lxcfs"
# runc's (and youki's) allow-list of bind destinations under /proc.
RUNC_PROC = {"/proc/" + f for f in
             ["cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo"]}

# Which Kubernetes versions each manifest claims (oldest, newest): the oldest schema
# kubernetes-validate ships is 1.25; the policy's API versions appeared in 1.34 (v1beta1)
# and 1.36 (v1).
OLDEST, NEWEST = "1.25.0", "1.37.0"
CLAIMS = {
    "opt-in/policy": ("1.36.0", NEWEST),
    "opt-in/policy-v1beta1": ("1.34.0", NEWEST),
    # A device plugin's CDI devices reach the runtime from kubelet 1.28 (feature gate
    # DevicePluginCDIDevices; on by default from 1.29).
    "opt-in/device-plugin": ("1.28.0", NEWEST),
}
# Manifests that are examples to copy, in no kustomization.
EXAMPLES = {"opt-in/hostpath/pod.yaml", "opt-in/device-plugin/pod.yaml"}

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}")


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


# ---------------------------------------------------------------------------------------
# Kustomize, the part these kustomizations use: resources (files and bases), namespace,
# images, JSON6902 patches.

def kustomize(directory):
    k = load(os.path.join(directory, "kustomization.yaml"))[0]
    out = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(directory, r))
        out += kustomize(p) if os.path.isdir(p) else load(p)
    for d in out:
        if "namespace" in k and d["kind"] != "Namespace" and "namespace" in d.get("metadata", {}):
            d["metadata"]["namespace"] = k["namespace"]
        for img in k.get("images", []):
            for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                if c.get("image") == img["name"]:
                    c["image"] = f'{img["newName"]}:{img["newTag"]}'
    for p in k.get("patches", []):
        ops = yaml.safe_load(p["patch"])
        t = p["target"]
        hits = [d for d in out if d["kind"] == t["kind"] and d["metadata"]["name"] == t["name"]]
        check(len(hits) == 1, f"{directory}: patch target {t} matches {len(hits)} resources")
        for d in hits:
            out[out.index(d)] = jsonpatch.apply_patch(d, ops)
    return out


def claims(rel):
    for prefix, v in CLAIMS.items():
        if rel == prefix or rel.startswith(prefix + "/"):
            return v
    return OLDEST, NEWEST


def validate(doc, versions, where):
    for v in versions:
        try:
            kubernetes_validate.validate(doc, v, strict=True)
            check(True, "")
        except Exception as e:
            # The error's first line says what; the rest is the whole schema.
            why = getattr(getattr(e, "caused_by", None), "message", None) or str(e).splitlines()[0]
            check(False, f"{where}: {doc['kind']} {doc['metadata'].get('name')} "
                         f"on Kubernetes {v}: {why}")


def schemas():
    listed = set()
    for kfile in sorted(glob.glob(os.path.join(ROOT, "**/kustomization.yaml"), recursive=True)):
        d = os.path.dirname(kfile)
        rel = os.path.relpath(d, ROOT)
        k = load(kfile)[0]
        listed |= {os.path.normpath(os.path.join(d, r)) for r in k.get("resources", [])}
        docs = kustomize(d)
        check(docs, f"{rel}: builds to nothing")
        for doc in docs:
            validate(doc, claims(rel), f"kustomize {rel}")
    for f in sorted(glob.glob(os.path.join(ROOT, "**/*.yaml"), recursive=True)):
        rel = os.path.relpath(f, ROOT)
        if f.endswith("kustomization.yaml") or rel.startswith("test/"):
            continue
        # Every manifest is part of a kustomization, except the hand-copied example.
        check(f in listed or rel in EXAMPLES, f"{rel} is in no kustomization")
        for doc in load(f):
            validate(doc, claims(os.path.dirname(rel)), rel)


# ---------------------------------------------------------------------------------------
# The policy

class TypeName(celtypes.MapType):
    """`Object`, `Object.spec.volumes`...: selecting a field names the nested type,
    constructing one gives the object its fields make."""

    def __init__(self, name):
        super().__init__({})
        self.type_name = name

    def __getitem__(self, key):
        return TypeName(f"{self.type_name}.{key}")

    def get(self, key, default=None):
        return self[key]

    def __contains__(self, key):
        return True

    def __call__(self, fields):
        return celtypes.MapType(fields or {})


def plain(v):
    """A CEL value as JSON."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, celtypes.BoolType):
        return bool(v)
    if isinstance(v, (celtypes.IntType, celtypes.UintType)):
        return int(v)
    if isinstance(v, celtypes.StringType):
        return str(v)
    if isinstance(v, Exception):
        raise v
    return v


def evaluate(policy, pod):
    """The policy's apply configuration for `pod`, its variables evaluated in order."""
    env = celpy.Environment()
    spec = policy["spec"]
    act = {"object": celpy.json_to_cel(pod), "oldObject": None, "Object": TypeName("Object")}
    variables = {}
    for var in spec.get("variables", []):
        act["variables"] = celpy.json_to_cel(variables)
        value = env.program(env.compile(var["expression"])).evaluate(act)
        variables[var["name"]] = plain(value)
    act["variables"] = celpy.json_to_cel(variables)
    out = []
    for m in spec["mutations"]:
        assert m["patchType"] == "ApplyConfiguration", m["patchType"]
        expr = m["applyConfiguration"]["expression"]
        out.append(plain(env.program(env.compile(expr)).evaluate(act)))
    return out


class Merge:
    """Server-side apply's merge of an apply configuration into an object: maps merge
    field by field, lists the schema marks `map` merge item by item on their keys, other
    lists and scalars are replaced."""

    def __init__(self, version):
        path = os.path.join(os.path.dirname(kubernetes_validate.__file__),
                            "kubernetes-json-schema", f"v{version}-local-strict", "_definitions.json")
        with open(path) as f:
            self.defs = json.load(f)["$defs"]

    def resolve(self, schema):
        while schema and "$ref" in schema:
            schema = self.defs[schema["$ref"].split("/")[-1]]
        return schema or {}

    def merge(self, obj, patch, schema):
        schema = self.resolve(schema)
        if isinstance(patch, dict) and isinstance(obj, dict):
            out = dict(obj)
            props = schema.get("properties", {})
            for k, v in patch.items():
                out[k] = self.merge(obj.get(k), v, props.get(k, {})) if k in obj else v
            return out
        if isinstance(patch, list) and isinstance(obj, list) and schema.get("x-kubernetes-list-type") == "map":
            keys = schema["x-kubernetes-list-map-keys"]
            out = list(obj)
            for item in patch:
                at = [i for i, o in enumerate(out) if all(o.get(k) == item.get(k) for k in keys)]
                if at:
                    out[at[0]] = self.merge(out[at[0]], item, schema.get("items", {}))
                else:
                    out.append(item)
            return out
        return patch


def selects(selector, labels):
    if selector is None:
        return True
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        k, op, vals = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def admit(policy, bindings, merge, pod, ns_labels):
    """The pod as the API server stores it: each binding that selects it applies the
    policy (reinvocation: once more if the last application changed it)."""
    labels = pod["metadata"].get("labels", {})
    for b in bindings:
        mr = b["spec"].get("matchResources", {})
        if not (selects(mr.get("namespaceSelector"), ns_labels) and selects(mr.get("objectSelector"), labels)):
            continue
        for _ in range(2):
            before = copy.deepcopy(pod)
            for cfg in evaluate(policy, pod):
                pod = merge.merge(pod, cfg, {"$ref": "#/$defs/io.k8s.api.core.v1.Pod"})
            if pod == before:
                break
    return pod


def sample(name, labels=None, containers=("app",), extra_volume=False):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": dict(labels or {})},
           "spec": {"containers": [{"name": c, "image": "registry.example.com/app:1"} for c in containers]}}
    if extra_volume:
        pod["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "app"}}]
        pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/etc/app"}]
    return pod


def expected_files(cdi_path, served_mount):
    with open(cdi_path) as f:
        spec = json.load(f)
    dev = [d for d in spec["devices"] if d["name"] == "default"][0]
    out = set()
    for m in dev["containerEdits"]["mounts"]:
        host = MOUNTPOINT + m["hostPath"][len(served_mount):]
        out.add((host, m["containerPath"]))
    return out


def injected(pod):
    """(hostPath, mountPath, type, readOnly) of every lxcfs-rs mount, per container."""
    vols = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    per = {}
    for c in pod["spec"]["containers"]:
        rows = []
        for m in c.get("volumeMounts", []):
            v = vols.get(m["name"], {})
            hp = v.get("hostPath", {})
            if hp.get("path", "").startswith(MOUNTPOINT + "/"):
                rows.append((hp["path"], m["mountPath"], hp.get("type"), m.get("readOnly", False)))
        per[c["name"]] = rows
    return per


def policies(cdi_path, served_mount):
    want = expected_files(cdi_path, served_mount)
    check(len(want) == 8, f"the default device lists {len(want)} files: {sorted(want)}")
    for rel, version in [("opt-in/policy", NEWEST), ("opt-in/policy-v1beta1", "1.34.0")]:
        docs = kustomize(os.path.join(ROOT, rel))
        policy = [d for d in docs if d["kind"] == "MutatingAdmissionPolicy"][0]
        bindings = [d for d in docs if d["kind"] == "MutatingAdmissionPolicyBinding"]
        merge = Merge(NEWEST)
        cases = [
            # pod, namespace labels, opted in
            (sample("labelled", {"lxcfs-rs.io/inject": "true"}), {}, True),
            (sample("in-labelled-ns"), {"lxcfs-rs.io/inject": "true"}, True),
            (sample("both", {"lxcfs-rs.io/inject": "true"}), {"lxcfs-rs.io/inject": "true"}, True),
            (sample("two-containers", {"lxcfs-rs.io/inject": "true"}, ("app", "sidecar"), True), {}, True),
            (sample("opted-out", {"lxcfs-rs.io/inject": "false"}), {"lxcfs-rs.io/inject": "true"}, False),
            (sample("not-opted-in", {"app": "x"}), {}, False),
            (sample("other-ns-label"), {"lxcfs-rs.io/inject": "yes"}, False),
        ]
        for pod, ns, opted in cases:
            name = f'{rel}: pod {pod["metadata"]["name"]}'
            try:
                got = admit(policy, bindings, merge, copy.deepcopy(pod), ns)
            except Exception as e:
                check(False, f"{name}: evaluating the policy: {e!r}")
                continue
            if not opted:
                check(got == pod, f"{name}: changed although not opted in")
                continue
            validate(got, [version, NEWEST], f"{name} (mutated)")
            names = [v["name"] for v in got["spec"]["volumes"]]
            check(len(names) == len(set(names)), f"{name}: volume names repeat: {names}")
            for orig in pod["spec"].get("volumes", []):
                check(orig in got["spec"]["volumes"], f"{name}: lost volume {orig}")
            for c, rows in injected(got).items():
                files = {(h, m) for h, m, _, _ in rows}
                check(len(rows) == len(files), f"{name}/{c}: a file mounted twice: {rows}")
                check(files == want, f"{name}/{c}: mounts {sorted(files)}, want {sorted(want)}")
                for h, m, t, ro in rows:
                    check(ro, f"{name}/{c}: {m} is writable")
                    want_type = "Directory" if m == "/sys/devices/system/cpu" else "File"
                    check(t == want_type, f"{name}/{c}: {m} has hostPath type {t}, want {want_type}")
                    check(not m.startswith("/proc/") or m in RUNC_PROC, f"{name}/{c}: runc refuses {m}")
                orig_c = [x for x in pod["spec"]["containers"] if x["name"] == c][0]
                for vm in orig_c.get("volumeMounts", []):
                    check(vm in [x for x in got["spec"]["containers"] if x["name"] == c][0]["volumeMounts"],
                          f"{name}/{c}: lost mount {vm}")
            # Idempotent: a pod that has them (admitted again, e.g. a re-created copy)
            # is left as it is.
            again = admit(policy, bindings, merge, copy.deepcopy(got), ns)
            check(again == got, f"{name}: a second admission changed the pod")
        # The hand-written fallback is exactly what the policy makes of its pod.
        example = load(os.path.join(ROOT, "opt-in/hostpath/pod.yaml"))[0]
        bare = copy.deepcopy(example)
        bare["spec"]["volumes"] = []
        for c in bare["spec"]["containers"]:
            c["volumeMounts"] = []
        bare["metadata"]["labels"] = {"lxcfs-rs.io/inject": "true"}
        made = admit(policy, bindings, merge, bare, {})
        made["metadata"].pop("labels")
        check(made == example, f"{rel}: opt-in/hostpath/pod.yaml differs from the policy's result:\n"
                               f"{yaml.safe_dump(made)}")
    # The v1beta1 copy is the v1 policy.
    a = kustomize(os.path.join(ROOT, "opt-in/policy"))
    b = kustomize(os.path.join(ROOT, "opt-in/policy-v1beta1"))
    for d in b:
        d["apiVersion"] = d["apiVersion"].replace("v1beta1", "v1")
    check(a == b, "opt-in/policy-v1beta1 is not opt-in/policy in v1beta1")


# ---------------------------------------------------------------------------------------
# The device plugin

def device_plugin(cdi_path):
    """The plugin's DaemonSet and the example pod agree with each other and with the CDI
    spec: the resource the pod requests is the one the plugin registers (its default,
    the spec's kind), the plugin reaches the kubelet's directory, and neither the
    example pod nor the main DaemonSet has a hostPath volume."""
    with open(cdi_path) as f:
        kind = json.load(f)["kind"]
    docs = kustomize(os.path.join(ROOT, "opt-in/device-plugin"))
    ds = [d for d in docs if d["kind"] == "DaemonSet"]
    check(len(ds) == 1, f"opt-in/device-plugin: {len(ds)} DaemonSets")
    if not ds:
        return
    spec = ds[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(c["args"][0] == "device-plugin", f"the plugin's pod runs {c['args']}")
    check("--resource-name" not in c["args"], "the plugin's pod names another resource")
    paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    dp = mounts.get("/var/lib/kubelet/device-plugins")
    check(dp is not None and paths.get(dp["name"]) == "/var/lib/kubelet/device-plugins"
          and not dp.get("readOnly", False),
          "the plugin's pod has the kubelet's device plugin directory, writable")
    args = c["args"]
    root = args[args.index("--host-root") + 1] if "--host-root" in args else "/"
    for d in ["/etc/cdi", "/var/run/cdi"]:
        m = mounts.get(os.path.join(root, d.lstrip("/")))
        check(m is not None and paths.get(m["name"]) == d,
              f"the plugin's pod sees the CDI spec directory {d} under {root}")
    lib = mounts.get(os.path.join(root, "var/lib"))
    check(lib is not None and lib.get("readOnly") and lib.get("mountPropagation") == "HostToContainer",
          "the plugin's pod sees the mountpoint's parent read-only, with later mounts")
    main_ds = [d for d in kustomize(ROOT) if d["kind"] == "DaemonSet"][0]
    check("volumes" not in main_ds["spec"]["template"]["spec"],
          "the main DaemonSet mounts a volume (a dead mount could hold it)")
    pod = load(os.path.join(ROOT, "opt-in/device-plugin/pod.yaml"))[0]
    validate(pod, [CLAIMS["opt-in/device-plugin"][0], NEWEST], "opt-in/device-plugin/pod.yaml")
    check(not pod["spec"].get("volumes"), "the example pod has volumes")
    for ctr in pod["spec"]["containers"]:
        limits = ctr.get("resources", {}).get("limits", {})
        check(limits.get(kind) == 1, f"example container {ctr['name']} requests {limits}, not {kind}: 1")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    schemas()
    policies(sys.argv[1], sys.argv[2])
    device_plugin(sys.argv[1])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
