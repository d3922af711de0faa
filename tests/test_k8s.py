"""The Kubernetes manifests (deploy/k8s) are valid, strict, and agree with the service they run.

Validated offline against the JSON schemas that kubernetes-validate bundles
(strict: an unknown or misspelt field fails), then checked against the code:
the port, the probes' routes, the environment the service really reads, the
Secret the keys come from, and the selectors that tie the objects together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT

from service.auth import is_open
from service.config import Settings
from service.main import ROUTERS

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
VERSION = kubernetes_validate.utils.latest_version()


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind() -> dict[str, dict[str, Any]]:
    objects = {}
    for path in MANIFESTS:
        for doc in documents(path):
            objects[doc["kind"]] = doc
    return objects


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_manifest_validates_strictly(path: Path) -> None:
    for doc in documents(path):
        if doc["kind"] == "Kustomization":
            continue  # not an API object; checked below
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_a_misspelt_field_fails_validation() -> None:
    """The check can fail: strict validation refuses a field Kubernetes does not know."""
    deployment = by_kind()["Deployment"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = broken["spec"]["template"]["spec"][
        "containers"
    ][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_kustomization_lists_every_object_but_the_example_secret() -> None:
    kustomization = documents(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"kustomization.yaml", "api-keys.example.yaml"}


def test_the_pod_runs_hardened_and_probes_the_open_routes() -> None:
    objects = by_kind()
    pod = objects["Deployment"]["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"requests", "limits"} <= set(container["resources"])
    settings_port = Settings.model_fields["port"].default
    (port,) = container["ports"]
    assert port["containerPort"] == settings_port == int(pod["metadata"]["annotations"]["prometheus.io/port"])
    open_paths = {r.path for router in ROUTERS for r in router.routes if is_open(r)}
    assert pod["metadata"]["annotations"]["prometheus.io/path"] in open_paths
    probes = {
        name: container[name]["httpGet"]["path"]
        for name in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes == {"startupProbe": "/ready", "readinessProbe": "/ready", "livenessProbe": "/health"}
    assert set(probes.values()) <= open_paths, "a probe must not need an API key"


def test_the_environment_is_what_the_service_reads_and_parses() -> None:
    (container,) = by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    known = {f"LPR_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known, f"unknown settings: {set(env) - known}"
    settings = Settings(**{k[4:].lower(): v for k, v in env.items() if k != "LPR_API_KEYS_FILE"})
    assert settings.log_format == "json" and settings.rate_limit
    grace = by_kind()["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.graceful_timeout + 5 < grace, "the drain must finish before the kubelet kills"


def test_the_keys_come_from_the_secret_the_example_describes(tmp_path: Path) -> None:
    objects = by_kind()
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    keys_file = Path(env["LPR_API_KEYS_FILE"])
    secret_volume = volumes[mounts[str(keys_file.parent)]]
    example = documents(K8S / "api-keys.example.yaml")[0]
    assert secret_volume["secret"]["secretName"] == example["metadata"]["name"]
    assert keys_file.name in example["stringData"]
    # The example's file parses as the service reads it: keys, and the comment line skipped.
    local = tmp_path / "keys"
    local.write_text(example["stringData"][keys_file.name])
    assert Settings(api_keys_file=local).api_key_list() == ["replace-with-a-long-random-key"]


def test_service_hpa_and_pdb_select_the_deployment_pods() -> None:
    objects = by_kind()
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        objects["Service"]["spec"]["selector"],
        objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        objects["Deployment"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", objects["Deployment"]["metadata"]["name"])
    assert objects["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert objects["Service"]["spec"]["ports"][0]["targetPort"] == "http"
