"""deploy/: every manifest is valid against the Kubernetes schemas (kubernetes-validate, strict),
and the gateway's probes and shutdown timings agree with the gateway itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


DOCS = documents()


@pytest.mark.parametrize("doc", DOCS, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in DOCS])
def test_manifest_is_valid(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def gateway_pod() -> dict[str, Any]:
    [deployment] = [
        d for d in DOCS if d["kind"] == "Deployment" and d["metadata"]["name"] == "llm-gateway"
    ]
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_probes_and_drain_match_the_gateway() -> None:
    pod = gateway_pod()
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    grace = float(env["GATEWAY_SHUTDOWN_GRACE"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # Kubernetes kills the pod after terminationGracePeriodSeconds, counted from preStop.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace
    assert (
        container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    )
    assert env["GATEWAY_BACKEND"].startswith("dns:///")


def test_backend_service_is_headless_for_round_robin() -> None:
    [service] = [
        d for d in DOCS if d["kind"] == "Service" and d["metadata"]["name"] == "chat-backend"
    ]
    assert service["spec"]["clusterIP"] == "None"
