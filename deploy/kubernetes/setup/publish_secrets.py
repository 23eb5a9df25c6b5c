"""The setup Job's second step: store the client secrets `twostep setup` wrote as Kubernetes Secrets.

    python3 publish_secrets.py DIR

DIR holds what `twostep setup --secret-file DIR/cli-client-secret --web-secret-file
DIR/web-client-secret` wrote: a file only for a client that setup created in this run. For each one
the Secret is created (or replaced, when it is left over from an earlier installation):

    cli-client-secret  ->  Secret twostep-cli  (client-id, client-secret)
    web-client-secret  ->  Secret twostep-web  (client-secret, secret-key: a new random session key)

No file: setup created no client (a re-run), so nothing is written. The Kubernetes API is reached
as in any pod: KUBERNETES_SERVICE_HOST/PORT, and the token, CA and namespace under the service
account directory (TWOSTEP_SA_DIR, default /var/run/secrets/kubernetes.io/serviceaccount). The
standard library only (the image's Python). No secret value is ever printed; an error is one line
`twostep-setup: error: ...` and exit status 1.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

SA_DIR = Path(os.environ.get("TWOSTEP_SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount"))
LABELS = {"app.kubernetes.io/name": "keycloak-twostep", "app.kubernetes.io/part-of": "keycloak-twostep"}


class Failure(Exception):
    pass


def wanted(out: Path) -> list[tuple[str, dict[str, str]]]:
    """(Secret name, its data) for each client secret setup wrote in this run."""
    found: list[tuple[str, dict[str, str]]] = []
    cli = out / "cli-client-secret"
    if cli.is_file():
        found.append(("twostep-cli", {"client-id": "twostep-cli", "client-secret": cli.read_text().strip()}))
    web = out / "web-client-secret"
    if web.is_file():
        found.append(("twostep-web", {"client-secret": web.read_text().strip(), "secret-key": secrets.token_hex(32)}))
    for name, data in found:
        if not all(data.values()):
            raise Failure(f"an empty value for Secret {name}: setup wrote an empty file")
    return found


def call(method: str, path: str, body: dict[str, object]) -> int:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if not host:
        raise Failure("KUBERNETES_SERVICE_HOST is not set: run this inside the setup Job's pod")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    context = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
    request = urllib.request.Request(
        f"https://{host}:{port}{path}",
        method=method,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": "Bearer " + (SA_DIR / "token").read_text().strip(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        # Always https to the API server named by the pod environment (never a file: or other scheme).
        with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise Failure(f"cannot reach the Kubernetes API at {host}:{port}: {exc}") from None


def publish(out: Path) -> list[str]:
    namespace = (SA_DIR / "namespace").read_text().strip()
    done = []
    for name, data in wanted(out):
        body: dict[str, object] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": LABELS},
            "type": "Opaque",
            "stringData": data,
        }
        status = call("POST", f"/api/v1/namespaces/{namespace}/secrets", body)
        action = "created"
        if status == 409:  # left over from an earlier installation: the new client's secret wins
            status = call("PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", body)
            action = "replaced"
        if status not in (200, 201):
            raise Failure(f"the Kubernetes API answered {status} when storing Secret {name} "
                          "(the Role twostep-setup allows create, and update of twostep-cli and twostep-web)")
        done.append(f"Secret {name} {action} (keys: {', '.join(sorted(data))})")
    return done


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: publish_secrets.py DIR", file=sys.stderr)
        return 2
    try:
        done = publish(Path(argv[1]))
    except (Failure, OSError) as exc:
        print(f"twostep-setup: error: {exc}", file=sys.stderr)
        return 1
    for line in done or ["no client was created in this run: the Secrets are left as they are"]:
        print(f"twostep-setup: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
