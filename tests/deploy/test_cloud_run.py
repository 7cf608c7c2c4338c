"""The Cloud Run deployment files: the service definitions parse as Knative services, name
every variable the GCP backend and push dispatch need, and are settings jobkit accepts; the
pull variant keeps CPU allocated and an instance warm; the queue and sweep script is valid
shell with the queue's rate limits; the Firestore index file parses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobkit_http import settings

ROOT = Path(__file__).resolve().parents[2]
PUSH = ROOT / "deploy/cloud-run/service.yaml"
PULL = ROOT / "deploy/cloud-run/service-pull.yaml"
DISPATCH = ROOT / "deploy/cloud-run/dispatch.sh"
INDEXES = ROOT / "deploy/firestore.indexes.json"

# What the GCP backend, the Gemini analyzer and push dispatch cannot start without.
NEEDED = {
    "JOBKIT_BACKEND": "gcp",
    "JOBKIT_GCP_PROJECT": None,
    "JOBKIT_GCS_BUCKET": None,
    "JOBKIT_ANALYZER": "gemini",
    "JOBKIT_AUTH": "entra",
    "JOBKIT_ENTRA_TENANT_ID": None,
    "JOBKIT_ENTRA_AUDIENCE": None,
}
PUSHED = {
    "JOBKIT_DISPATCH": "push",
    "JOBKIT_TASKS_QUEUE": None,
    "JOBKIT_DISPATCH_URL": None,
    "JOBKIT_DISPATCH_SERVICE_ACCOUNT": None,
}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def container(service: dict[str, Any]) -> dict[str, Any]:
    """jobkit's container (the one serving the port; a sidecar may run beside it)."""
    containers = service["spec"]["template"]["spec"]["containers"]
    [found] = [c for c in containers if c["name"] == "jobkit"]
    assert found["ports"] == [{"name": "http1", "containerPort": 8080}]
    return dict(found)


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: str(item["value"]) for item in container(service)["env"]}


@pytest.mark.parametrize("path", [PUSH, PULL], ids=["push", "pull"])
def test_a_service_definition_is_a_knative_service_jobkit_can_start_from(path: Path) -> None:
    service = load(path)
    assert (service["apiVersion"], service["kind"]) == ("serving.knative.dev/v1", "Service")
    template = service["spec"]["template"]
    assert template["spec"]["serviceAccountName"].endswith(".iam.gserviceaccount.com")
    assert template["spec"]["containerConcurrency"] >= 1
    annotations = template["metadata"]["annotations"]
    assert int(annotations["autoscaling.knative.dev/maxScale"]) >= int(
        annotations["autoscaling.knative.dev/minScale"]
    )
    box = container(service)
    assert box["image"]
    assert box["resources"]["limits"]["memory"]
    assert box["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert box["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = environment(service)
    known = {name for row in settings.SETTINGS for name in (row.name, *row.fallbacks)}
    assert set(env) <= known, set(env) - known  # no variable jobkit would ignore
    for name, value in NEEDED.items():
        assert name in env, name
        assert value is None or env[name] == value, (name, env[name])
    # jobkit accepts them as they are (with Cloud Run's PORT): nothing missing or malformed.
    parsed = settings.from_env({**env, "PORT": "8080"})
    assert (parsed.host, parsed.port) == ("0.0.0.0", 8080)
    assert parsed.grace_seconds + 2 <= 10  # the grace, the releases, the exit: in 10 s


def test_the_push_service_dispatches_by_doorbells_with_cpu_during_requests_only() -> None:
    service = load(PUSH)
    env = environment(service)
    for name, value in PUSHED.items():
        assert name in env, name
        assert value is None or env[name] == value
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/cpu-throttling"] == "true"
    assert annotations["autoscaling.knative.dev/minScale"] == "0"  # scales to zero
    spec = service["spec"]["template"]["spec"]
    # An instance running JOBKIT_CONCURRENCY jobs is above Cloud Run's 60% target.
    assert int(env["JOBKIT_CONCURRENCY"]) / spec["containerConcurrency"] > 0.6
    assert spec["timeoutSeconds"] == 1800  # Cloud Tasks' longest dispatch deadline
    # Prometheus: Managed Service for Prometheus' collector beside jobkit, started after it.
    names = [c["name"] for c in spec["containers"]]
    assert names == ["jobkit", "collector"]
    assert "cloud-run-gmp-sidecar" in spec["containers"][1]["image"]
    assert "ports" not in spec["containers"][1]
    depends = json.loads(annotations["run.googleapis.com/container-dependencies"])
    assert depends == {"collector": ["jobkit"]}
    parsed = settings.from_env(env)
    assert parsed.dispatch == "push"
    assert parsed.tasks_queue is not None
    assert parsed.tasks_queue.endswith("/queues/jobkit-dispatch")


def test_the_pull_service_keeps_cpu_allocated_and_an_instance_warm() -> None:
    service = load(PULL)
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/cpu-throttling"] == "false"
    assert int(annotations["autoscaling.knative.dev/minScale"]) >= 1
    env = environment(service)
    assert env["JOBKIT_DISPATCH"] == "pull"
    assert not set(PUSHED) - {"JOBKIT_DISPATCH"} & set(env)


def test_the_queue_and_sweep_script_is_valid_shell_with_the_rate_limits() -> None:
    checked = subprocess.run(
        ["bash", "-n", str(DISPATCH)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    text = DISPATCH.read_text()
    for flag in (
        "--max-dispatches-per-second",
        "--max-concurrent-dispatches",
        '--schedule="* * * * *"',
        "/internal/sweep",
        "--oidc-service-account-email",
    ):
        assert flag in text, flag
    push = environment(load(PUSH))
    assert push["JOBKIT_TASKS_QUEUE"].rsplit("/", 1)[1] in text  # the queue the service names


def test_the_firestore_index_file_parses() -> None:
    document = json.loads(INDEXES.read_text())
    assert document["indexes"]
    for index in document["indexes"]:
        assert index["collectionGroup"] == "jobs"
        assert all({"fieldPath", "order"} <= set(field) for field in index["fields"])
