"""Kubernetes: every manifest through kubeconform, and the Keycloak, setup and secret wiring.

kubeconform (Go module github.com/yannh/kubeconform, installed by deploy/local/run-tests.sh through
the Go module proxy) validates every manifest, strict (unknown fields and duplicate keys fail),
against the Kubernetes JSON schemas that the PyPI package kubernetes-validate ships (the files
kubeconform would otherwise download): for the oldest Kubernetes we support and the newest the
package has. The schemas' shared definitions are merged into each kind's file first, since
kubeconform resolves no reference outside a schema file.

Not done: the Keycloak resource (k8s.keycloak.org) against the Keycloak Operator's own CRD of the
pinned version. No registry this project reaches ships that CRD (Maven Central has no
org.keycloak:keycloak-operator artifact; no PyPI or npm package carries it), so kubeconform skips
that kind and the tests below check its wiring instead.

The setup Job's second step (deploy/kubernetes/setup/publish_secrets.py) runs for real against a
loopback HTTPS stand-in for the Kubernetes API (no cluster here): what it stores, and that it stores
nothing on a re-run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.test_deploy_static import (
    K8S,
    containers,
    k8s_manifest_files,
    k8s_resources,
    kustomize_resources,
    load_docs,
    need_module,
    pod_spec,
    run,
)

KUBECONFORM_VERSION = "v0.7.0"  # keep in step with deploy/local/run-tests.sh
K8S_VERSIONS = ["1.30.0", "latest"]
CUSTOM_KINDS = ["k8s.keycloak.org/v2alpha1/Keycloak"]
PUBLISH = K8S / "setup" / "publish_secrets.py"


def kubeconform() -> str:
    gobin = Path(os.environ.get("GOPATH", Path.home() / "go")) / "bin" / "kubeconform"
    path = shutil.which("kubeconform") or (str(gobin) if gobin.exists() else None)
    if not path:
        message = ("kubeconform not found: GOFLAGS=-mod=mod go install "
                   f"github.com/yannh/kubeconform/cmd/kubeconform@{KUBECONFORM_VERSION} (deploy/local/run-tests.sh)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Built by `go install` (no version stamped into -v): the module version is in the build info.
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    info = run([go, "version", "-m", path]).stdout if go else ""
    assert f"github.com/yannh/kubeconform\t{KUBECONFORM_VERSION}" in info or not info, info
    return path


def schema_dir(tmp: Path, version: str) -> Path:
    """kubernetes-validate's strict schemas for the kinds we use, each with its definitions inlined."""
    kv = need_module("kubernetes_validate")
    if version == "latest":
        version = kv.latest_version()
    base = Path(kv.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    defs = json.loads((base / "_definitions.json").read_text(encoding="utf-8"))["$defs"]
    out = tmp / version
    out.mkdir()
    for _, doc in k8s_resources():
        group, _, ver = doc["apiVersion"].rpartition("/")
        if doc["apiVersion"].startswith("k8s.keycloak.org/"):
            continue
        name = f"{doc['kind'].lower()}-{group.split('.')[0] + '-' if group else ''}{ver}.json"
        if (out / name).exists():
            continue
        text = (base / name).read_text(encoding="utf-8").replace('"/api/_definitions.json#/$defs/', '"#/$defs/')
        schema = json.loads(text)
        schema["$defs"] = reachable(text, defs)
        (out / name).write_text(json.dumps(schema), encoding="utf-8")
    return out


def reachable(text: str, defs: dict[str, Any]) -> dict[str, Any]:
    """The definitions a schema refers to, directly or through others (kubeconform compiles them all)."""
    todo = set(re.findall(r'"#/\$defs/([^"]+)"', text))
    found: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = defs[name]
        todo |= set(re.findall(r'"(?:/api/_definitions.json)?#/\$defs/([^"]+)"', json.dumps(defs[name])))
    schema: dict[str, Any] = json.loads(json.dumps(found).replace('"/api/_definitions.json#/$defs/', '"#/$defs/'))
    return schema


def validate(tool: str, schemas: Path, files: list[Path]) -> list[dict[str, Any]]:
    result = run([tool, "-strict", "-verbose", "-output", "json", "-skip", ",".join(CUSTOM_KINDS),
                  "-schema-location", f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
                  *map(str, files)])
    resources: list[dict[str, Any]] = json.loads(result.stdout)["resources"]
    return resources


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_passes_kubeconform(tmp_path: Path, version: str) -> None:
    tool = kubeconform()
    resources = validate(tool, schema_dir(tmp_path, version), k8s_manifest_files())
    bad = [f"{r['filename']}: {r['kind']}/{r['name']}: {r['status']} {r.get('msg', '')}"
           for r in resources if r["status"] not in ("statusValid", "statusSkipped")]
    assert not bad, "\n".join(bad)
    valid = sum(r["status"] == "statusValid" for r in resources)
    skipped = [r["kind"] for r in resources if r["status"] == "statusSkipped"]
    docs = [d for _, d in k8s_resources()]
    assert skipped == ["Keycloak"], skipped
    assert valid == len(docs) - 1, f"{valid} valid of {len(docs)} documents"


def test_kubeconform_rejects_a_broken_manifest(tmp_path: Path) -> None:
    tool = kubeconform()
    schemas = schema_dir(tmp_path, "latest")
    job = next(d for _, d in k8s_resources() if d["kind"] == "Job")
    for change in ("typo", "type"):
        broken = yaml.safe_load(yaml.safe_dump(job))
        if change == "typo":
            broken["spec"]["backofLimit"] = 0
        else:
            broken["spec"]["template"]["spec"]["initContainers"][0]["args"] = "setup"
        path = tmp_path / f"broken-{change}.yaml"
        path.write_text(yaml.safe_dump(broken), encoding="utf-8")
        (resource,) = validate(tool, schemas, [path])
        assert resource["status"] == "statusInvalid", (change, resource)


# --------------------------------------------------------------------------------------------------
# Keycloak: through the operator, or plain
# --------------------------------------------------------------------------------------------------


def one(relative: str) -> dict[str, Any]:
    (doc,) = load_docs(K8S / relative)
    return doc


def example_secret(name: str) -> dict[str, Any]:
    return one(f"{name}.example.yaml")


def test_keycloak_resource_for_the_operator() -> None:
    cr = one("keycloak/operator/keycloak.yaml")
    spec = cr["spec"]
    assert cr["apiVersion"] == "k8s.keycloak.org/v2alpha1" and cr["kind"] == "Keycloak"
    assert "namespace" not in cr["metadata"]
    assert spec["startOptimized"] is True and spec["instances"] >= 2
    admin = example_secret(spec["bootstrapAdmin"]["user"]["secret"])
    assert {"username", "password"} <= admin["stringData"].keys()
    db = spec["db"]
    assert db["vendor"] == "postgres"
    for ref in (db["usernameSecret"], db["passwordSecret"]):
        assert ref["key"] in example_secret(ref["name"])["stringData"]
    assert spec["http"]["httpEnabled"] is True, "twostep talks to keycloak-service:8080 inside the cluster"
    config = one("config/configmap.yaml")
    assert config["data"]["TWOSTEP_URL"] == f"http://{cr['metadata']['name']}-service:8080"
    assert kustomize_resources(K8S / "keycloak" / "operator") == [(K8S / "keycloak/operator/keycloak.yaml").resolve()]


def test_plain_keycloak_statefulset() -> None:
    sts = one("keycloak/plain/keycloak-statefulset.yaml")
    svc = one("keycloak/plain/keycloak-service.yaml")
    spec = pod_spec(sts)
    (c,) = spec["containers"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    # The same Service name as the operator's, so one TWOSTEP_URL fits both.
    assert f"http://{svc['metadata']['name']}:8080" == one("config/configmap.yaml")["data"]["TWOSTEP_URL"]
    assert sts["spec"]["replicas"] >= 2 and sts["spec"]["podManagementPolicy"] == "OrderedReady"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["jgroups-fd"] == ports["jgroups"] + 50000, "FD_SOCK2 listens on the transport port + 50000"
    for probe, path in (("startupProbe", "/health/started"), ("readinessProbe", "/health/ready"),
                        ("livenessProbe", "/health/live")):
        assert c[probe]["httpGet"] == {"path": path, "port": "management"}, probe
    assert ports["management"] == 9000
    env = {e["name"]: e for e in c["env"]}
    assert "$(POD_IP)" in env["JAVA_OPTS_APPEND"]["value"] and "fieldRef" in env["POD_IP"]["valueFrom"]
    for name, secret in (("KC_DB_USERNAME", "keycloak-db"), ("KC_DB_PASSWORD", "keycloak-db"),
                         ("KC_BOOTSTRAP_ADMIN_USERNAME", "keycloak-bootstrap-admin"),
                         ("KC_BOOTSTRAP_ADMIN_PASSWORD", "keycloak-bootstrap-admin")):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret and ref["key"] in example_secret(secret)["stringData"], name
    build_time = {"KC_DB", "KC_CACHE", "KC_CACHE_STACK", "KC_HEALTH_ENABLED", "KC_METRICS_ENABLED"}
    assert not build_time & env.keys(), "build options are fixed in the image"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= c["resources"][kind].keys(), kind


# --------------------------------------------------------------------------------------------------
# The setup Job: the bootstrap admin only there, Secrets written without a log line
# --------------------------------------------------------------------------------------------------


def test_setup_job_separates_the_admin_password_from_the_kubernetes_token() -> None:
    job = one("setup/setup-job.yaml")
    spec = pod_spec(job)
    assert job["spec"]["backoffLimit"] == 0 and spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False and spec["serviceAccountName"] == "twostep-setup"
    (setup,) = spec["initContainers"]
    (publish,) = spec["containers"]
    args = setup["args"]
    assert args[0] == "setup"
    out = {m["name"]: m["mountPath"] for m in setup["volumeMounts"]}["out"]
    assert args[args.index("--secret-file") + 1] == f"{out}/cli-client-secret"
    assert args[args.index("--web-secret-file") + 1] == f"{out}/web-client-secret"
    token_mounts = {"/var/run/secrets/kubernetes.io/serviceaccount"}
    assert not token_mounts & {m["mountPath"] for m in setup["volumeMounts"]}, "setup holds no Kubernetes token"
    assert token_mounts <= {m["mountPath"] for m in publish["volumeMounts"]}
    assert "env" not in publish and "envFrom" not in publish, "publish holds no Keycloak password"
    assert publish["command"][-1] == out and all(m.get("readOnly") for m in publish["volumeMounts"]
                                                 if m["mountPath"] != "/tmp")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["out"]["emptyDir"]["medium"] == "Memory", "secrets never touch a disk"
    kust = one("setup/kustomization.yaml")
    assert kust["configMapGenerator"] == [{"name": volumes["script"]["configMap"]["name"], "files": [PUBLISH.name]}]


def test_setup_role_writes_only_its_two_secrets() -> None:
    docs = load_docs(K8S / "setup" / "setup-rbac.yaml")
    role = next(d for d in docs if d["kind"] == "Role")
    rules = role["rules"]
    assert all(r["resources"] == ["secrets"] and r["apiGroups"] == [""] for r in rules)
    verbs = {v for r in rules for v in r["verbs"]}
    assert verbs == {"create", "update"}, "never get/list/watch: the Job reads no Secret"
    (update,) = [r for r in rules if "update" in r["verbs"]]
    assert sorted(update["resourceNames"]) == ["twostep-cli", "twostep-web"]
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"]}]


# --------------------------------------------------------------------------------------------------
# publish_secrets.py against a loopback stand-in for the Kubernetes API
# --------------------------------------------------------------------------------------------------


class FakeApi(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, str, str, dict[str, Any]]]] = []
    existing: ClassVar[set[str]] = set()
    deny: ClassVar[bool] = False

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def _record(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append((self.command, self.path, self.headers["Authorization"], body))
        return body

    def do_POST(self) -> None:
        body = self._record()
        if self.deny:
            return self._answer(403)
        name = body["metadata"]["name"]
        self._answer(409 if name in self.existing else 201)
        self.existing.add(name)

    def do_PUT(self) -> None:
        self._record()
        self._answer(200)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    sa = tmp_path / "sa"
    sa.mkdir()
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(sa / "key.pem"), "-out", str(sa / "ca.crt")],
                          capture_output=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"openssl: {made.stderr.decode()}")
    (sa / "token").write_text("test-token\n")
    (sa / "namespace").write_text("idp\n")
    FakeApi.calls, FakeApi.existing, FakeApi.deny = [], set(), False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sa / "ca.crt", sa / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {"PATH": os.environ["PATH"], "TWOSTEP_SA_DIR": str(sa), "KUBERNETES_SERVICE_HOST": "127.0.0.1",
           "KUBERNETES_SERVICE_PORT": str(server.server_address[1])}
    try:
        yield tmp_path, env
    finally:
        server.shutdown()
        server.server_close()


def publish(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(PUBLISH), str(out)], env=env)


def test_publish_stores_new_client_secrets_and_nothing_on_a_rerun(api: tuple[Path, dict[str, str]]) -> None:
    tmp, env = api
    out = tmp / "out"
    out.mkdir()
    (out / "cli-client-secret").write_text("cli-s3cret\n")
    (out / "web-client-secret").write_text("web-s3cret\n")
    result = publish(out, env)
    assert result.returncode == 0, result.stderr
    assert [(m, p) for m, p, _, _ in FakeApi.calls] == [("POST", "/api/v1/namespaces/idp/secrets")] * 2
    assert {auth for _, _, auth, _ in FakeApi.calls} == {"Bearer test-token"}
    bodies = {b["metadata"]["name"]: b for _, _, _, b in FakeApi.calls}
    assert bodies["twostep-cli"]["stringData"] == {"client-id": "twostep-cli", "client-secret": "cli-s3cret"}
    web = bodies["twostep-web"]["stringData"]
    assert web["client-secret"] == "web-s3cret" and len(bytes.fromhex(web["secret-key"])) == 32
    # What the workloads read is what was stored (the same keys as the example Secrets).
    for name, body in bodies.items():
        assert body["stringData"].keys() == example_secret(name)["stringData"].keys()
    assert "s3cret" not in result.stdout + result.stderr and web["secret-key"] not in result.stdout
    assert "Secret twostep-cli created" in result.stdout

    # Left over from an earlier installation: replaced, so the new client's secret wins.
    FakeApi.calls.clear()
    assert publish(out, env).returncode == 0
    assert [m for m, _, _, _ in FakeApi.calls] == ["POST", "PUT", "POST", "PUT"]
    assert FakeApi.calls[1][1] == "/api/v1/namespaces/idp/secrets/twostep-cli"

    # A re-run of setup creates no client and writes no file: nothing is sent.
    FakeApi.calls.clear()
    empty = tmp / "empty"
    empty.mkdir()
    result = publish(empty, env)
    assert result.returncode == 0 and FakeApi.calls == [] and "left as they are" in result.stdout


def test_publish_fails_in_one_line_when_refused(api: tuple[Path, dict[str, str]]) -> None:
    tmp, env = api
    out = tmp / "out"
    out.mkdir()
    (out / "cli-client-secret").write_text("cli-s3cret\n")
    FakeApi.deny = True
    result = publish(out, env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("twostep-setup: error: ") and "403" in line and "s3cret" not in line
    (out / "cli-client-secret").write_text("\n")
    FakeApi.deny = False
    result = publish(out, env)
    assert result.returncode == 1 and "empty" in result.stderr and not FakeApi.calls[1:]


def test_every_workload_container_is_checked() -> None:
    """The hardening checks in test_deploy_static cover init containers too (the setup step)."""
    job = one("setup/setup-job.yaml")
    assert [c["name"] for c in containers(pod_spec(job))] == ["setup", "publish"]


def test_publish_script_is_lint_and_type_clean() -> None:
    """It lives under deploy/ (shipped in a ConfigMap), outside the ruff and mypy runs of run-tests.sh."""
    for cmd in (["ruff", "check", str(PUBLISH)], ["mypy", "--strict", "--no-incremental", str(PUBLISH)]):
        result = run([sys.executable, "-m", *cmd])
        assert result.returncode == 0, result.stdout + result.stderr
