"""Static checks of everything under deploy/ that cannot run on this machine or in CI.

There is no Docker engine and no Kubernetes cluster here, so the container and cluster paths are
validated, not run:

- Kubernetes manifests against the Kubernetes OpenAPI schemas (kubernetes-validate ships them, so no
  network is needed), strict mode (unknown fields fail), plus the rules the schema cannot express
  (selectors, probes, securityContext, secretKeyRef only, kustomization coverage);
- the compose file against the Compose specification's JSON schema (check-jsonschema ships it as
  ``vendor.compose-spec``), plus our own wiring (pinned images, theme JAR, healthchecks, depends_on);
- the Dockerfile's structure (pinned base, non-root, no pip cache, what it copies);
- systemd units with ``systemd-analyze verify`` and ``systemd-analyze security --offline``
  (Debian package systemd) and, always, a parse of the keys we rely on;
- Prometheus rules with ``promtool check rules`` and the rule unit tests with ``promtool test rules``
  (Debian package prometheus), and always a structural check of the YAML;
- the crontab line, parsed with python-crontab and run for real with stubbed paths (flock, env file).

Python packages: deploy/requirements-ci.txt. A missing external tool is a skip on a developer
machine and a failure in CI (CI=true), so CI cannot go green without running every check.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKER = DEPLOY / "docker"
SYSTEMD = DEPLOY / "systemd"
CRONTAB = DEPLOY / "cron" / "twostep-sync.crontab"
REMIND_CRONTAB = DEPLOY / "cron" / "twostep-remind.crontab"
ALERTS = DEPLOY / "prometheus" / "twostep-alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "twostep-alerts.test.yml"
ENV_EXAMPLE = DEPLOY / "twostep.env.example"

INSTALLED_BIN = "/opt/keycloak-twostep/bin/twostep"
ENV_FILE = "/etc/keycloak-twostep/twostep.env"
# Our Keycloak image (deploy/docker/keycloak/Dockerfile); tests/test_deploy_pins.py checks its tag.
KEYCLOAK_IMAGE_NAME = "keycloak-twostep-keycloak"
# Custom resources (the Keycloak Operator's): validated by tests/test_deploy_k8s_keycloak.py.
CUSTOM_API_GROUPS = ("k8s.keycloak.org/",)
# Each way to apply the manifests (kubectl apply -k DIR); *.example.yaml are in none of them.
K8S_VARIANTS = ["", "watch", "setup", "keycloak/operator", "keycloak/plain"]
# Oldest Kubernetes minor we claim to support (CronJob timeZone is GA since 1.27) and the newest
# the validator ships.
K8S_VERSIONS = ["1.30.0", "latest"]


def need_tool(name: str, apt_package: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install the Debian package {apt_package}"
    if os.environ.get("CI"):
        pytest.fail(message + " in .ci/run (CI must run every deploy check)")
    pytest.skip(message)


def need_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"Python module {name} not found: pip install -r deploy/requirements-ci.txt"
        if os.environ.get("CI"):
            pytest.fail(message + " in .ci/run (CI must run every deploy check)")
        pytest.skip(message)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


# --------------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------------


def k8s_manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def k8s_resources() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in k8s_manifest_files() for doc in load_docs(path)]


def kustomize_resources(directory: Path, seen: tuple[Path, ...] = ()) -> list[Path]:
    """The manifest files a kustomization pulls in, following nested kustomization directories."""
    assert directory not in seen, f"kustomization cycle through {directory}"
    kfile = directory / "kustomization.yaml"
    assert kfile.is_file(), f"{directory} has no kustomization.yaml"
    (kust,) = load_docs(kfile)
    assert kust["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and kust["kind"] == "Kustomization"
    assert "namespace" not in kust, f"{kfile}: manifests must stay namespace-agnostic"
    out: list[Path] = []
    for entry in kust.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            out += kustomize_resources(target, (*seen, directory))
        else:
            assert target.is_file(), f"{kfile}: resource {entry} does not exist"
            out.append(target)
    return out


def rendered(variant: Path) -> list[dict[str, Any]]:
    return [doc for path in kustomize_resources(variant) for doc in load_docs(path)]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any]
    if doc["kind"] == "CronJob":
        spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = doc["spec"]["template"]["spec"]
    return spec


def workloads() -> list[tuple[Path, dict[str, Any]]]:
    """The twostep workloads (our Python image); Keycloak's own are checked in test_deploy_k8s_keycloak."""
    return [(p, d) for p, d in k8s_resources() if d["kind"] in {"Deployment", "CronJob", "Job"}]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def by_kind_name(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def test_there_are_manifests_to_validate() -> None:
    kinds = sorted({d["kind"] for _, d in k8s_resources()})
    assert kinds == ["ConfigMap", "CronJob", "Deployment", "Job", "Keycloak", "Role", "RoleBinding", "Secret",
                     "Service", "ServiceAccount", "StatefulSet"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", k8s_manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_k8s_manifest_matches_openapi_schema(path: Path, version: str) -> None:
    kubernetes_validate = need_module("kubernetes_validate")
    if version == "latest":
        version = kubernetes_validate.latest_version()
    docs = load_docs(path)
    assert docs, f"{path} holds no document"
    for doc in docs:
        if doc["apiVersion"].startswith(CUSTOM_API_GROUPS):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc.get('kind')}/{doc['metadata'].get('name')}: {exc.message}")


def test_k8s_validator_rejects_a_broken_manifest() -> None:
    """The validator really validates: an unknown field and a wrong type are both rejected."""
    kubernetes_validate = need_module("kubernetes_validate")
    doc = by_kind_name([d for _, d in k8s_resources()], "CronJob", "twostep-sync")
    version = kubernetes_validate.latest_version()
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["concurrencyPolicy_typo"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["startingDeadlineSeconds"] = "fifty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_k8s_manifests_are_namespace_agnostic_and_commit_no_secret() -> None:
    for path, doc in k8s_resources():
        assert "namespace" not in doc["metadata"], f"{path}: namespace must not be set"
        if doc["kind"] == "Secret":
            assert path.name.endswith(".example.yaml"), f"{path}: Secrets only as *.example.yaml"
            for value in doc.get("stringData", {}).values():
                assert value in {"twostep-cli", "admin", "keycloak", "REPLACE-ME"}, f"{path}: a real-looking secret"
            assert "data" not in doc, f"{path}: no encoded data in the example"


def test_k8s_example_secret_is_not_deployed_and_every_manifest_is() -> None:
    deployed = {p.resolve() for variant in K8S_VARIANTS for p in kustomize_resources(K8S / variant)}
    for path in k8s_manifest_files():
        if path.name.endswith(".example.yaml"):
            assert path.resolve() not in deployed, f"{path} must not be in a kustomization"
        else:
            assert path.resolve() in deployed, f"{path} is in no kustomization"


def test_k8s_variants_run_sync_exactly_one_way() -> None:
    default = rendered(K8S)
    watch = rendered(K8S / "watch")
    for docs in (default, watch):
        by_kind_name(docs, "Deployment", "twostep-web")
        by_kind_name(docs, "Service", "twostep-web")
        by_kind_name(docs, "ConfigMap", "twostep-config")
        names = [(d["kind"], d["metadata"]["name"]) for d in docs]
        assert len(names) == len(set(names)), f"duplicate resources: {names}"
    assert [d["kind"] for d in default if "sync" in d["metadata"]["name"]] == ["CronJob"]
    assert [d["metadata"]["name"] for d in watch if "sync" in d["metadata"]["name"]] == ["twostep-sync-watch"]


def test_k8s_cronjob_settings() -> None:
    cron = by_kind_name(rendered(K8S), "CronJob", "twostep-sync")
    spec = cron["spec"]
    assert spec["schedule"] == "* * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 60, "a missed minute must be skipped, not caught up"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] <= 2
    assert 0 < job["activeDeadlineSeconds"] <= 600
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"][:2] == ["sync", "--once"]


def test_k8s_watch_deployment_settings() -> None:
    dep = by_kind_name(rendered(K8S / "watch"), "Deployment", "twostep-sync-watch")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = pod_spec(dep)["containers"]
    args = container["args"]
    assert args[:2] == ["sync", "--watch"]
    assert int(args[args.index("--max-sleep") + 1]) > 0


def test_k8s_web_deployment_probes_and_service() -> None:
    docs = rendered(K8S)
    dep = by_kind_name(docs, "Deployment", "twostep-web")
    (container,) = pod_spec(dep)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    assert args[0] == "web" and int(args[args.index("--port") + 1]) == ports["http"]
    assert args[args.index("--host") + 1] == "0.0.0.0"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert get["port"] in ("http", ports["http"]), probe
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    # Metrics on their own port (never the pages'), and that port is not behind the Service.
    assert int(annotations["prometheus.io/port"]) == ports["metrics"] == int(args[args.index("--metrics-port") + 1])
    assert ports["metrics"] != ports["http"]
    svc = by_kind_name(docs, "Service", "twostep-web")
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert all(p["targetPort"] in ports or p["targetPort"] in ports.values() for p in svc["spec"]["ports"])
    assert all(p["targetPort"] in ("http", ports["http"]) for p in svc["spec"]["ports"]), "only the pages"


@pytest.mark.parametrize(
    "path,doc", workloads(), ids=lambda v: v.name if isinstance(v, Path) else v["metadata"]["name"]
)
def test_k8s_workload_hardening(path: Path, doc: dict[str, Any]) -> None:
    if doc["kind"] == "Deployment":
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
    spec = pod_spec(doc)
    assert spec.get("automountServiceAccountToken") is False
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    mounts_needed = set()
    for c in containers(spec):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= c["resources"][kind].keys(), f"{c['name']}: {kind}"
        image = c["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), image
        mounts_needed |= {m["name"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, "writable /tmp"
    assert mounts_needed <= {v["name"] for v in spec.get("volumes", [])}


# Which Secret each twostep role reads, and nothing else (least privilege: the bootstrap admin only
# in the one-off setup, the day-to-day service account only in sync, the pages' own client only in web).
ROLE_SECRETS = {"setup": {"keycloak-bootstrap-admin"}, "sync": {"twostep-cli"}, "web": {"twostep-web"}}


def test_k8s_env_comes_from_configmap_and_secret_refs() -> None:
    docs = [d for _, d in k8s_resources()]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    examples = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    roles = set()
    for _, doc in workloads():
        for c in containers(pod_spec(doc)):
            if "args" not in c:
                assert "env" not in c and "envFrom" not in c, f"{c['name']}: no settings, no credentials"
                continue
            role = c["args"][0]
            roles.add(role)
            env = {e["name"]: e for e in c.get("env", [])}
            secret_refs = [e["valueFrom"]["secretKeyRef"] for e in env.values()
                           if "secretKeyRef" in e.get("valueFrom", {})]
            refs = {ref["name"] for ref in secret_refs}
            assert refs == ROLE_SECRETS[role], f"{c['name']} ({role}) reads Secrets {sorted(refs)}"
            for ref in secret_refs:
                assert ref["key"] in examples[ref["name"]]["stringData"], f"example {ref['name']} lacks {ref['key']}"
            for e in env.values():
                if re.search(r"SECRET|PASSWORD|_TOKEN$", e["name"]):
                    assert "value" not in e, f"{e['name']} must come from a Secret"
            if role == "web":
                # The pages act with their own client (twostep-web), never the CLI's service account.
                assert not {"TWOSTEP_CLIENT_SECRET", "TWOSTEP_ADMIN_PASSWORD"} & env.keys(), c["name"]
                assert "TWOSTEP_WEB_CLIENT_SECRET" in env and "TWOSTEP_WEB_SECRET_KEY" in env
            elif role == "sync":
                assert {"TWOSTEP_CLIENT_ID", "TWOSTEP_CLIENT_SECRET"} <= env.keys()
                assert "TWOSTEP_ADMIN_PASSWORD" not in env
            else:
                assert {"TWOSTEP_ADMIN_USERNAME", "TWOSTEP_ADMIN_PASSWORD"} <= env.keys()
            envfrom = [s["configMapRef"]["name"] for s in c.get("envFrom", [])]
            assert envfrom == [config["metadata"]["name"]]
    assert roles == set(ROLE_SECRETS)
    assert {"TWOSTEP_URL", "TWOSTEP_REALM"} <= config["data"].keys()


# --------------------------------------------------------------------------------------------------
# Docker: compose file and Dockerfile
# --------------------------------------------------------------------------------------------------

COMPOSE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"


def compose() -> dict[str, Any]:
    (doc,) = load_docs(COMPOSE)
    return doc


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    need_module("check_jsonschema")
    return run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)])


def test_compose_matches_compose_spec_schema() -> None:
    result = check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    doc = compose()
    doc["services"]["keycloak"]["healthcheck"]["retry"] = 3  # typo of "retries"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = check_compose_schema(broken)
    assert result.returncode != 0, "the compose schema check accepted an unknown healthcheck key"


def test_compose_images_are_pinned() -> None:
    services = compose()["services"]
    assert services["keycloak"]["image"].startswith(KEYCLOAK_IMAGE_NAME + ":")
    assert services["postgres"]["image"] == "postgres:16"
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: {image}"


def test_compose_wiring() -> None:
    services = compose()["services"]
    kc = services["keycloak"]
    # The provider is baked into the image (deploy/docker/keycloak), not mounted: nothing in providers/.
    assert not [v for v in kc["volumes"] if "/opt/keycloak/providers" in str(v)]
    assert (DOCKER / kc["build"]["context"]).resolve() == REPO
    assert kc["build"]["dockerfile"] == "deploy/docker/keycloak/Dockerfile"
    assert kc["command"][:2] == ["start", "--optimized"]
    for vol in kc["volumes"]:
        if isinstance(vol, str) and vol.startswith("."):
            assert (DOCKER / vol.split(":")[0]).exists(), vol
    assert kc["depends_on"]["postgres"]["condition"] == "service_healthy"

    setup = services["twostep-setup"]
    assert setup["command"][:2] == ["setup", "--realm"]
    assert setup["depends_on"]["keycloak"]["condition"] == "service_healthy"
    assert setup["restart"] == "no"
    for name, first in (("twostep-web", "web"), ("twostep-sync", "sync")):
        svc = services[name]
        assert svc["command"][0] == first
        assert svc["depends_on"]["twostep-setup"]["condition"] == "service_completed_successfully"
        assert "TWOSTEP_ADMIN_PASSWORD" not in svc["environment"], f"{name} must use the service account"
    web_env = services["twostep-web"]["environment"]
    assert "TWOSTEP_CLIENT_SECRET" not in web_env, "the pages act with twostep-web, not the CLI's account"
    web_cmd = services["twostep-web"]["command"]
    assert "--metrics-port" in web_cmd and "--metrics-host" not in web_cmd, "metrics: container loopback only"
    assert services["twostep-sync"]["command"][:2] == ["sync", "--watch"]
    web = services["twostep-web"]
    port = web["command"][web["command"].index("--port") + 1]
    assert f"127.0.0.1:{port}/healthz" in " ".join(web["healthcheck"]["test"])
    for name in ("postgres", "keycloak", "twostep-web"):
        assert services[name]["healthcheck"]["test"], f"{name} needs a healthcheck"
    assert "/health/ready" in " ".join(kc["healthcheck"]["test"])

    for name in ("twostep-setup", "twostep-web", "twostep-sync"):
        svc = services[name]
        assert svc["user"] == "10001:10001" and svc["read_only"] is True
        assert svc["cap_drop"] == ["ALL"]
        build = svc["build"]
        assert (DOCKER / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_secrets_are_not_committed() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for key in (
        "POSTGRES_PASSWORD",
        "KC_DB_PASSWORD",
        "KC_BOOTSTRAP_ADMIN_PASSWORD",
        "TWOSTEP_CLIENT_SECRET",
    ):
        for m in re.finditer(rf"^\s*{key}:\s*(.*)$", text, re.M):
            assert m.group(1).startswith("${"), f"{key} must come from the environment, not the file"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_small_pinned_and_non_root() -> None:
    ins = dockerfile_instructions()
    args = dict(rest.split("=", 1) for word, rest in ins if word == "ARG" and "=" in rest)
    bases = [rest.split()[0] for word, rest in ins if word == "FROM"]
    assert bases, "no FROM"
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert image == "python:3.11-slim", image
    users = [rest for word, rest in ins if word == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), "last USER must be a numeric non-root uid"
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    for cmd in re.findall(r"pip (?:install|wheel)[^;&]*", runs):
        assert "--no-cache-dir" in cmd, cmd
    assert re.search(r"pip install --no-cache-dir [^;]*/wheels/keycloak_twostep-\S*\.whl", runs), "the wheel"
    entry = [rest for word, rest in ins if word == "ENTRYPOINT"]
    assert entry == ['["twostep"]']


def test_dockerfile_copies_what_the_wheel_needs() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", "setup.py"}
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        needed.add(readme)
    setup_py = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    package_dir = next(ast.literal_eval(n.value) for n in setup_py.body
                       if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PACKAGE_DIR")
    needed |= {src.split("/")[0] for src in package_dir.values()}
    copied = set()
    for word, rest in dockerfile_instructions():
        if word == "COPY" and not rest.startswith("--from"):
            copied |= {src.rstrip("/") for src in shlex.split(rest)[:-1]}
    assert needed <= {Path(src).parts[0] for src in copied}, f"the Dockerfile does not copy {sorted(needed - copied)}"
    for src in copied:
        assert (REPO / src).exists(), f"COPY {src}: missing in the repository"
    ignore = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert ignore[0] == "*", "the build context starts from nothing"
    for src in copied:
        assert f"!{src}" in ignore or f"!{src}/" in ignore, f"{src} is excluded from the build context"


# --------------------------------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------------------------------

UNITS = sorted(SYSTEMD.glob("*.service")) + sorted(SYSTEMD.glob("*.timer"))


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's syntax: sections, KEY=VALUE, repeatable keys, comments with # or ;."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{n}: not KEY=VALUE in a section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_units_exist() -> None:
    names = {p.name for p in UNITS}
    assert names == {
        "twostep-sync.service",
        "twostep-sync.timer",
        "twostep-sync-watch.service",
        "twostep-remind.service",
        "twostep-remind.timer",
        "twostep-web.service",
    }


@pytest.mark.parametrize("path", [p for p in UNITS if p.suffix == ".service"], ids=lambda p: p.name)
def test_systemd_service_keys(path: Path) -> None:
    svc = parse_unit(path)["Service"]
    one = {k: v[-1] for k, v in svc.items()}
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
        "EnvironmentFile": ENV_FILE,
    }.items():
        assert one.get(key) == value, f"{path.name}: {key}={one.get(key)!r}, want {value!r}"
    exec_start = shlex.split(one["ExecStart"])
    assert exec_start[0] == INSTALLED_BIN
    expected = {
        "twostep-sync.service": ["sync", "--once"],
        "twostep-sync-watch.service": ["sync", "--watch"],
        "twostep-remind.service": ["sync", "--once", "--remind"],
        "twostep-web.service": ["web"],
    }[path.name]
    assert exec_start[1 : 1 + len(expected)] == expected
    if path.name == "twostep-sync.service":
        assert one["Type"] == "oneshot"
        textfile = exec_start[exec_start.index("--textfile") + 1]
        assert textfile.startswith("/run/" + one["RuntimeDirectory"] + "/"), "ProtectSystem=strict"
    elif path.name == "twostep-remind.service":
        assert one["Type"] == "oneshot"
        assert "--textfile" not in exec_start, "one writer of the sync metrics file: the minutely pass"
    else:
        assert "Restart" in one and "WantedBy" in {k for s in parse_unit(path).values() for k in s}


def test_systemd_timer_and_watch_are_alternatives() -> None:
    timer = parse_unit(SYSTEMD / "twostep-sync.timer")
    assert timer["Timer"]["OnCalendar"] == ["minutely"]
    assert timer["Timer"]["Unit"] == ["twostep-sync.service"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    watch = parse_unit(SYSTEMD / "twostep-sync-watch.service")
    conflicts = " ".join(watch["Unit"]["Conflicts"]).split()
    assert {"twostep-sync.timer", "twostep-sync.service"} <= set(conflicts)


def test_systemd_remind_timer_is_daily() -> None:
    timer = parse_unit(SYSTEMD / "twostep-remind.timer")
    assert timer["Timer"]["Unit"] == ["twostep-remind.service"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    tool = need_tool("systemd-analyze", "systemd")
    (spec,) = timer["Timer"]["OnCalendar"]
    result = run([tool, "calendar", "--iterations=2", spec])
    assert result.returncode == 0, result.stderr
    nexts = re.findall(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC", result.stdout)
    assert len(nexts) >= 2 and nexts[0][1] == nexts[1][1] and nexts[0][0] != nexts[1][0], result.stdout


def staged_units(tmp_path: Path) -> list[Path]:
    """Copies of the units whose ExecStart points at a stub: verify checks that the binary exists."""
    stub = tmp_path / "twostep"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    out = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text(encoding="utf-8").replace(INSTALLED_BIN, str(stub)), encoding="utf-8")
        out.append(copy)
    return out


def systemd_verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    tool = need_tool("systemd-analyze", "systemd")
    return run([tool, "verify", "--man=no", *map(str, units)], cwd=units[0].parent)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    result = systemd_verify(staged_units(tmp_path))
    # systemd only warns about unknown keys or bad values ("..., ignoring"): any output fails.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_systemd_analyze_verify_rejects_a_broken_unit(tmp_path: Path) -> None:
    units = staged_units(tmp_path)
    timer = next(u for u in units if u.name == "twostep-sync.timer")
    timer.write_text(timer.read_text(encoding="utf-8").replace("minutely", "minutly"), encoding="utf-8")
    result = systemd_verify(units)
    assert result.returncode != 0 or "minutly" in result.stdout + result.stderr


@pytest.mark.parametrize("name", [p.name for p in UNITS if p.suffix == ".service"])
def test_systemd_security_exposure(tmp_path: Path, name: str) -> None:
    tool = need_tool("systemd-analyze", "systemd")
    unit = next(u for u in staged_units(tmp_path) if u.name == name)
    # --threshold is in tenths: fail above an overall exposure of 2.0 ("OK" is below 4.0).
    result = run([tool, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)])
    assert result.returncode == 0, result.stdout[-600:] + result.stderr


# --------------------------------------------------------------------------------------------------
# Prometheus rules
# --------------------------------------------------------------------------------------------------


def alert_rules() -> dict[str, dict[str, Any]]:
    (doc,) = load_docs(ALERTS)
    rules: dict[str, dict[str, Any]] = {}
    for group in doc["groups"]:
        assert isinstance(group["name"], str) and group["rules"], group
        for rule in group["rules"]:
            assert rule["alert"] not in rules, f"duplicate alert {rule['alert']}"
            rules[rule["alert"]] = rule
    return rules


def test_prometheus_rules_structure() -> None:
    rules = alert_rules()
    for name, rule in rules.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, name
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
    expected = {
        "TwostepSyncStopped": "twostep_sync_last_success_timestamp_seconds",
        "TwostepSyncMetricsMissing": "absent(twostep_sync_last_success_timestamp_seconds)",
        "TwostepBypassOverdue": "twostep_bypass_most_overdue_seconds",
        "TwostepSyncErrors": "rate(twostep_sync_errors_total[",
        "TwostepHelpRequestWaiting": "twostep_help_request_oldest_age_seconds",
        "TwostepSyncCronJobNotSucceeding": 'kube_cronjob_status_last_successful_time{cronjob="twostep-sync"}',
    }
    assert set(rules) == set(expected)
    for name, needle in expected.items():
        assert needle in rules[name]["expr"], name
    assert re.search(r"\)\s*>\s*120\s*$", rules["TwostepBypassOverdue"]["expr"])
    tested = {t["alertname"] for t in _alert_unit_tests()}
    assert tested == set(rules), f"alerts without a promtool unit test: {set(rules) - tested}"


def _alert_unit_tests() -> Iterator[dict[str, Any]]:
    (doc,) = load_docs(ALERT_TESTS)
    assert doc["rule_files"] == [ALERTS.name]
    for test in doc["tests"]:
        yield from test["alert_rule_test"]


def test_promtool_check_rules() -> None:
    tool = need_tool("promtool", "prometheus")
    result = run([tool, "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    tool = need_tool("promtool", "prometheus")
    result = run([tool, "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules_rejects_bad_promql(tmp_path: Path) -> None:
    tool = need_tool("promtool", "prometheus")
    bad = tmp_path / "bad.yml"
    bad.write_text(ALERTS.read_text(encoding="utf-8").replace("> 120", "> > 120"), encoding="utf-8")
    assert run([tool, "check", "rules", str(bad)]).returncode != 0


# --------------------------------------------------------------------------------------------------
# cron
# --------------------------------------------------------------------------------------------------


def cron_job(path: Path = CRONTAB) -> Any:
    crontab = need_module("crontab")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    entries = [ln for ln in lines if not ln.lstrip().startswith("#")]
    env = [ln for ln in entries if re.fullmatch(r"[A-Z_]+=\S+", ln)]
    jobs_text = [ln for ln in entries if ln not in env]
    assert len(jobs_text) == 1, f"expected one job line, got {jobs_text}"
    # System crontab format (/etc/cron.d): minute hour day month weekday USER command.
    tab = crontab.CronTab(tab=path.read_text(encoding="utf-8"), user=False)
    jobs = list(tab)
    assert len(jobs) == 1, "python-crontab did not accept the job line"
    return jobs[0]


def test_crontab_line_parses() -> None:
    crontab = need_module("crontab")
    job = cron_job()
    assert job.is_valid() and job.is_enabled()
    schedule = " ".join(str(s) for s in job.slices)
    assert schedule == "* * * * *"
    assert crontab.CronSlices.is_valid(schedule)
    assert job.user == "twostep"
    assert "%" not in job.command, "cron turns % into a newline"
    words = shlex.split(job.command.split(">>")[0])
    assert words[:3] == ["flock", "-n", "/run/lock/twostep-sync.lock"]
    inner = words[words.index("-c") + 1]
    assert ENV_FILE in inner and f"exec {INSTALLED_BIN} sync --once" in inner
    assert run(["sh", "-n", "-c", job.command]).returncode == 0


def test_remind_crontab_runs_daily_after_the_minutely_pass() -> None:
    job = cron_job(REMIND_CRONTAB)
    assert job.is_valid() and job.is_enabled() and job.user == "twostep"
    minute, hour, *rest = (str(s) for s in job.slices)
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"], "once a day"
    assert "%" not in job.command
    words = shlex.split(job.command.split(">>")[0])
    # The same lock as the minutely job, waited for (-w) rather than skipped (-n): a daily run must not be lost.
    assert words[:4] == ["flock", "-w", "600", "/run/lock/twostep-sync.lock"]
    inner = words[words.index("-c") + 1]
    assert f"exec {INSTALLED_BIN} sync --once --remind" in inner and ENV_FILE in inner
    assert run(["sh", "-n", "-c", job.command]).returncode == 0


def test_crontab_parser_rejects_a_bad_schedule() -> None:
    crontab = need_module("crontab")
    assert not crontab.CronSlices.is_valid("61 * * * *")
    assert not list(crontab.CronTab(tab="* * * * twostep\n", user=False))


def test_crontab_command_runs_with_env_file_and_never_overlaps(tmp_path: Path) -> None:
    """Run the job's command as cron would, with the installed paths replaced by stand-ins."""
    need_tool("flock", "util-linux")
    command = cron_job().command
    calls = tmp_path / "calls"
    stub = tmp_path / "twostep"
    stub.write_text(f'#!/bin/sh\necho "$TWOSTEP_URL $TWOSTEP_REALM $*" >> {calls}\nsleep 2\n', encoding="utf-8")
    stub.chmod(0o755)
    (tmp_path / "log").mkdir()
    replaced = command
    for installed, stand_in in (
        (INSTALLED_BIN, stub),
        (ENV_FILE, ENV_EXAMPLE),
        ("/run/lock/twostep-sync.lock", tmp_path / "lock"),
        ("/var/log/twostep/sync.log", tmp_path / "log" / "sync.log"),
    ):
        assert installed in replaced, f"the cron line no longer uses {installed}: update this test"
        replaced = replaced.replace(installed, str(stand_in))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    first = subprocess.Popen(["sh", "-c", replaced], env=env)
    deadline = time.monotonic() + 10
    while not calls.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run(["sh", "-c", replaced], env=env)
    assert first.wait(timeout=30) == 0
    assert second.returncode != 0, "a second run started while the first held the lock"
    lines = calls.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("https://keycloak.example.org example sync --once")


def test_env_example_is_plain_key_value() -> None:
    keys = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"TWOSTEP_[A-Z_]+=[^\s'\"$`]*", line), line
            keys.append(line.split("=", 1)[0])
    assert {"TWOSTEP_URL", "TWOSTEP_REALM", "TWOSTEP_CLIENT_ID", "TWOSTEP_CLIENT_SECRET"} <= set(keys)


# --------------------------------------------------------------------------------------------------
# Deploy files vs. the code: settings names and command-line flags
# --------------------------------------------------------------------------------------------------


def env_names_used() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#?(TWOSTEP_[A-Z_]+)=", line)
        if m:
            names.add(m.group(1))
    for svc in compose()["services"].values():
        names |= {k for k in svc.get("environment", {}) if k.startswith("TWOSTEP_")}
    for _, doc in k8s_resources():
        if doc["kind"] == "ConfigMap":
            names |= set(doc["data"])
    for _, doc in workloads():
        for c in containers(pod_spec(doc)):
            names |= {e["name"] for e in c.get("env", [])}
    return names


def source_text() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for d in ("plugin", "sync") for p in sorted((REPO / d).rglob("*.py"))
    )


def test_env_names_are_known_settings() -> None:
    from twostep import settings
    known = {settings.ENV_PREFIX + f.upper() for f in settings.Settings.__dataclass_fields__}
    known.add(settings.ENV_PREFIX + "CONFIG")
    # Variables read directly (click envvar=, os.environ) by a command, e.g. the web pages'.
    known |= set(re.findall(r"[\"'](TWOSTEP_[A-Z_]+)[\"']", source_text()))
    assert env_names_used() <= known, f"unknown settings: {sorted(env_names_used() - known)}"


def test_alerts_use_metrics_the_code_exports() -> None:
    """The alert rules watch metrics by name; a renamed metric would silence them."""
    exported = source_text()
    (doc,) = load_docs(ALERTS)
    used = {
        m
        for group in doc["groups"]
        for rule in group["rules"]
        for m in re.findall(r"\b(twostep_[a-z_]+)", rule["expr"])
    }
    assert used, "the rules watch no twostep metric"

    def exported_as(metric: str) -> bool:
        if re.search(rf"\b{metric}\b", exported):
            return True
        # prometheus_client's Counter("x") is exported as x_total.
        base = metric.removesuffix("_total")
        return metric.endswith("_total") and re.search(rf"Counter\(\s*[\"']{base}[\"']", exported) is not None

    missing = sorted(m for m in used if not exported_as(m))
    assert not missing, f"the alert rules watch metrics the code does not export: {', '.join(missing)}"

    # And by the registry itself, after one recorded pass (names, not just strings in the source).
    from twostep import metrics

    metrics.reset_for_tests()
    try:
        metrics.record_error("r", "unavailable")
        metrics.record_pass("r", ok=True, active=0, next_end=None)
        metrics.record_help("r", open_count=0, oldest=None)  # every pass reads the help request queue too
        served = {m.name for m in metrics.REGISTRY.collect()}
        served |= {s.name for m in metrics.REGISTRY.collect() for s in m.samples}
    finally:
        metrics.reset_for_tests()
    assert used <= served, f"not in the metrics registry: {sorted(used - served)}"


def twostep_invocations() -> list[list[str]]:
    out = []
    for unit in UNITS:
        for value in parse_unit(unit).get("Service", {}).get("ExecStart", []):
            out.append(shlex.split(value)[1:])
    inner = shlex.split(shlex.split(cron_job().command.split(">>")[0])[-1])
    out.append(inner[inner.index(INSTALLED_BIN) + 1 :])
    for _, doc in workloads():
        out += [c["args"] for c in containers(pod_spec(doc)) if "args" in c]
    out += [svc["command"] for svc in compose()["services"].values() if svc["image"].startswith("keycloak-twostep:")]
    return out


def test_deploy_files_use_existing_cli_flags() -> None:
    invocations = twostep_invocations()
    assert {inv[0] for inv in invocations} == {"setup", "sync", "web"}
    missing = []
    helps: dict[str, subprocess.CompletedProcess[str]] = {}
    for inv in invocations:
        if inv[0] not in helps:
            helps[inv[0]] = run([sys.executable, "-m", "twostep", inv[0], "--help"])
        result = helps[inv[0]]
        if "No such command" in result.stderr:
            missing.append(inv[0])
            continue
        assert result.returncode == 0, f"twostep {inv[0]} --help: {result.stderr}"
        for flag in (w for w in inv if w.startswith("--")):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.stdout), (
                f"`twostep {' '.join(inv)}`: {flag} is not in `twostep {inv[0]} --help`"
            )
    assert not missing, f"deploy files call commands that do not exist: twostep {', '.join(sorted(set(missing)))}"
