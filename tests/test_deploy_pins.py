"""Deploy what we test: one Keycloak version, one provider JAR, in every shipped deployment.

The pins: ``deploy/keycloak-version`` (the Keycloak the harness fetches and runs: keycloak.sh and
cluster.sh read it) and the provider JAR named by ``plugin/keycloak/pom.xml`` (what
deploy/local/provider.sh builds and the harness installs). Our Keycloak image is tagged
``<keycloak version>-<provider version>``. Any deployment file (compose, Dockerfiles, Kubernetes,
systemd, the operations guide) naming another Keycloak version, another JAR or another image tag
fails here, and so does a Keycloak Dockerfile that does not bake the JAR in the way Keycloak's
container guide does (no container engine runs here, so the Dockerfile is read, not built).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KC_DOCKERFILE = DEPLOY / "docker" / "keycloak" / "Dockerfile"
COMPOSE = DEPLOY / "docker" / "docker-compose.yml"
OPERATIONS = REPO / "docs" / "operations.md"

PIN = (DEPLOY / "keycloak-version").read_text(encoding="utf-8").strip()


def pom_coordinates() -> tuple[str, str]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(REPO / "plugin" / "keycloak" / "pom.xml").getroot()
    artifact, version = root.find("m:artifactId", ns), root.find("m:version", ns)
    assert artifact is not None and version is not None and artifact.text and version.text
    return artifact.text.strip(), version.text.strip()


ARTIFACT, PROVIDER_VERSION = pom_coordinates()
JAR = f"{ARTIFACT}-{PROVIDER_VERSION}.jar"
JAR_PATH = f"plugin/keycloak/target/{JAR}"
IMAGE_TAG = f"{PIN}-{PROVIDER_VERSION}"
KEYCLOAK_IMAGE = f"keycloak-twostep-keycloak:{IMAGE_TAG}"
BASE_IMAGE = "quay.io/keycloak/keycloak"


def test_pins_are_well_formed() -> None:
    assert re.fullmatch(r"26\.\d+\.\d+", PIN), PIN
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROVIDER_VERSION) and ARTIFACT == "keycloak-twostep"


# --------------------------------------------------------------------------------------------------
# Every deployment file against the pins
# --------------------------------------------------------------------------------------------------

# What a file may name, each with the one value the pins allow.
PATTERNS = {
    "Keycloak image": (re.compile(rf"{re.escape(BASE_IMAGE)}:([\w.${{}}-]+)"), {PIN, "${KEYCLOAK_VERSION}"}),
    "our Keycloak image": (re.compile(r"keycloak-twostep-keycloak:([\w.-]+)"), {IMAGE_TAG}),
    "image tag": (re.compile(r"newTag:\s*\"?(\d+\.\d+\.\d+-[\w.]+)"), {IMAGE_TAG}),
    "provider JAR": (re.compile(rf"\b({re.escape(ARTIFACT)}-\d[\w.-]*?)\.jar\b"), {JAR.removesuffix(".jar")}),
    "Keycloak dist": (re.compile(r"keycloak-quarkus-dist[-:](\d+\.\d+\.\d+)"), {PIN}),
    "Keycloak home": (re.compile(r"/opt/keycloak-(\d+\.\d+\.\d+)"), {PIN}),
}
# Files that name a Keycloak release anywhere must name the pin: the deployments themselves.
STRICT_DIRS = ("docker", "kubernetes", "systemd")


def pin_mismatches(text: str, strict: bool) -> list[str]:
    found = []
    for what, (pattern, allowed) in PATTERNS.items():
        found += [f"{what} {m.group(1)!r}" for m in pattern.finditer(text) if m.group(1) not in allowed]
    if strict:  # the deployments themselves (the harness and docs may name the other tested releases)
        found += [f"Keycloak release {v!r}" for v in re.findall(r"(?<![\w.])(\d+\.\d+\.\d+)(?![\w.])", text)
                  if v.startswith(PIN.split(".")[0] + ".") and v != PIN]
    return found


def deployment_files() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix not in {".lock", ".json", ".pyc"}]
    return [*sorted(files), OPERATIONS, REPO / "README.md"]


@pytest.mark.parametrize("path", deployment_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_deployment_file_names_only_the_pinned_versions(path: Path) -> None:
    strict = path.is_relative_to(DEPLOY) and path.relative_to(DEPLOY).parts[0] in STRICT_DIRS
    bad = pin_mismatches(path.read_text(encoding="utf-8"), strict)
    assert not bad, f"{path.relative_to(REPO)} names {', '.join(bad)}; the pins: Keycloak {PIN}, {JAR}"


def test_pin_check_catches_other_versions() -> None:
    assert pin_mismatches(f"FROM {BASE_IMAGE}:26.7.2", strict=False) == ["Keycloak image '26.7.2'"]
    assert pin_mismatches(f"cp {ARTIFACT}-0.1.9.jar providers/", strict=False)
    assert pin_mismatches("image: keycloak-twostep-keycloak:26.7.3-9.9.9", strict=False)
    assert pin_mismatches("version 26.6.1 here", strict=True) and not pin_mismatches("version 26.6.1", strict=False)
    assert not pin_mismatches(f"{BASE_IMAGE}:{PIN} {JAR} keycloak-twostep-keycloak:{IMAGE_TAG}", strict=True)


def test_the_harness_and_the_code_read_the_same_pin() -> None:
    """The scripts read deploy/keycloak-version; the places that must repeat the pin agree with it."""
    for script in ("keycloak.sh", "cluster.sh"):
        text = (DEPLOY / "local" / script).read_text(encoding="utf-8")
        assert 'VERSION="${KEYCLOAK_VERSION:-$(cat "$REPO/deploy/keycloak-version")}"' in text, script
        assert not re.search(r"KEYCLOAK_VERSION:-\d", text), f"{script}: a second pin"
    provider_sh = (DEPLOY / "local" / "provider.sh").read_text(encoding="utf-8")
    assert f'JAR="$REPO/{JAR_PATH}"' in provider_sh, "provider.sh builds another JAR than the pom names"
    from twostep.doctor import TESTED_VERSIONS

    assert ".".join(map(str, TESTED_VERSIONS[1])) == PIN, "the top of twostep doctor's tested range"
    for test_file in ("theme_pages.py", "test_theme_jar.py"):
        defaults = re.findall(r"KEYCLOAK_VERSION\", \"(\d+\.\d+\.\d+)\"", (REPO / "tests" / test_file).read_text())
        assert defaults == [PIN], f"tests/{test_file}: default Keycloak {defaults}"


# --------------------------------------------------------------------------------------------------
# The Keycloak image recipe (read, not built: no container engine here)
# --------------------------------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def cluster_build_options() -> list[str]:
    text = (DEPLOY / "local" / "cluster.sh").read_text(encoding="utf-8")
    m = re.search(r"^BUILD_OPTS=\(([^)]*)\)", text, re.M)
    assert m, "cluster.sh: BUILD_OPTS"
    return m.group(1).split()


def dockerfile_problems(text: str) -> list[str]:
    """What Keycloak's container guide asks of an optimized image with our provider, checked."""
    ins = instructions(text)
    problems = []
    args = dict(rest.split("=", 1) for word, rest in ins if word == "ARG" and "=" in rest)
    if args.get("KEYCLOAK_VERSION") != PIN:
        problems.append(f"ARG KEYCLOAK_VERSION={args.get('KEYCLOAK_VERSION')}, the pin is {PIN}")
    stages: list[list[tuple[str, str]]] = []
    for word, rest in ins:
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    if len(stages) != 2:
        return [*problems, f"{len(stages)} stages: want a build stage and a runtime stage"]
    for stage in stages:
        image = stage[0][1].split()[0].replace("${KEYCLOAK_VERSION}", args.get("KEYCLOAK_VERSION", "?"))
        if image != f"{BASE_IMAGE}:{PIN}":
            problems.append(f"FROM {image}: want the official {BASE_IMAGE}:{PIN}")
    build, runtime = stages
    name = build[0][1].split()[-1] if " AS " in build[0][1].upper() else None
    copies = [shlex_words(rest) for word, rest in build if word == "COPY"]
    if not any(w[-2:] == [JAR_PATH, "/opt/keycloak/providers/"] for w in copies):
        problems.append(f"no COPY {JAR_PATH} /opt/keycloak/providers/ in the build stage")
    runs = [rest for word, rest in build if word == "RUN"]
    want = "/opt/keycloak/bin/kc.sh build " + " ".join(cluster_build_options())
    if runs != [want]:
        problems.append(f"RUN {runs}: want `{want}` (the build options of deploy/local/cluster.sh)")
    if not name or ("COPY", f"--from={name} /opt/keycloak/ /opt/keycloak/") not in runtime:
        problems.append("the runtime stage must copy the built /opt/keycloak from the build stage")
    if [w for w, _ in runtime if w == "RUN"]:
        problems.append("the runtime stage runs nothing (everything is built in the build stage)")
    users = [rest for word, rest in runtime if word == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append("the last USER must be a numeric non-root uid")
    if [rest for word, rest in runtime if word == "ENTRYPOINT"] != ['["/opt/keycloak/bin/kc.sh"]']:
        problems.append("ENTRYPOINT must be kc.sh (the operator passes `start --optimized` as arguments)")
    if [rest for word, rest in runtime if word == "CMD"] != ['["start", "--optimized"]']:
        problems.append('CMD must be ["start", "--optimized"]')
    return problems


def shlex_words(rest: str) -> list[str]:
    return [w for w in rest.split() if not w.startswith("--")]


def test_keycloak_dockerfile_bakes_the_tested_jar_in() -> None:
    problems = dockerfile_problems(KC_DOCKERFILE.read_text(encoding="utf-8"))
    assert not problems, "deploy/docker/keycloak/Dockerfile:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("old,new", [
    ("ARG KEYCLOAK_VERSION=26", "ARG KEYCLOAK_VERSION=25"),
    (f"{JAR_PATH} /opt/keycloak/providers/", f"{JAR_PATH} /opt/keycloak/themes/"),
    ("--metrics-enabled=true", "--metrics-enabled=false"),
    ("USER 1000", "USER root"),
    ('CMD ["start", "--optimized"]', 'CMD ["start"]'),
    ("COPY --from=builder /opt/keycloak/ /opt/keycloak/", "COPY --from=builder /opt/keycloak/lib /opt/keycloak/lib"),
])
def test_keycloak_dockerfile_check_rejects_a_broken_recipe(old: str, new: str) -> None:
    text = KC_DOCKERFILE.read_text(encoding="utf-8")
    assert old in text, f"the Dockerfile no longer has {old!r}: update this test"
    assert dockerfile_problems(text.replace(old, new))


def test_keycloak_dockerignore_lets_only_the_jar_through() -> None:
    ignore = [ln.strip() for ln in (KC_DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
              if ln.strip() and not ln.lstrip().startswith("#")]
    assert ignore == ["*", f"!{JAR_PATH}"]
    copied = [shlex_words(rest)[0] for word, rest in instructions(KC_DOCKERFILE.read_text()) if word == "COPY"
              and "--from" not in rest]
    assert copied == [JAR_PATH]


# --------------------------------------------------------------------------------------------------
# The deployments use that image
# --------------------------------------------------------------------------------------------------


def test_compose_builds_and_runs_our_keycloak_image() -> None:
    kc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["keycloak"]
    assert kc["image"] == KEYCLOAK_IMAGE
    assert kc["build"] == {"context": "../..", "dockerfile": "deploy/docker/keycloak/Dockerfile",
                           "args": {"KEYCLOAK_VERSION": PIN}}
    assert kc["command"][:2] == ["start", "--optimized"]
    build_time = {"KC_DB", "KC_CACHE", "KC_CACHE_STACK", "KC_HEALTH_ENABLED", "KC_METRICS_ENABLED", "KC_FEATURES"}
    assert not build_time & kc["environment"].keys(), "build options belong in the image (kc.sh build)"


def k8s_docs(relative: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / relative).read_text(encoding="utf-8")) if d]


def test_kubernetes_runs_our_keycloak_image() -> None:
    (cr,) = k8s_docs("keycloak/operator/keycloak.yaml")
    spec = cr["spec"]
    assert isinstance(spec, dict)
    assert spec["image"] == KEYCLOAK_IMAGE and spec["startOptimized"] is True
    (sts,) = k8s_docs("keycloak/plain/keycloak-statefulset.yaml")
    template = sts["spec"]
    assert isinstance(template, dict)
    (container,) = template["template"]["spec"]["containers"]
    assert container["image"] == KEYCLOAK_IMAGE and container["args"][:2] == ["start", "--optimized"]
    (kust,) = k8s_docs("keycloak/plain/kustomization.yaml")
    assert kust["images"] == [{"name": "keycloak-twostep-keycloak", "newTag": IMAGE_TAG}]


def test_operations_guide_names_the_pins() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    assert "deploy/keycloak-version" in text and KEYCLOAK_IMAGE in text and JAR in text
    assert f"quay.io/keycloak/keycloak:{PIN}" in text
