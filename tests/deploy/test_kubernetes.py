"""The Kubernetes manifests under deploy/kubernetes: rendered by the real kustomize
(``kubectl kustomize``), every object validated offline against the Kubernetes schemas
(PyPI kubernetes-validate) or the Prometheus Operator CRD schemas vendored in
tests/deploy/crd-schemas, and the agent config they carry accepted by ``check-config``."""

from __future__ import annotations

import base64
import copy
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
KUBE = REPO / "deploy" / "kubernetes"
SCHEMAS = Path(__file__).resolve().parent / "crd-schemas"
RULES = REPO / "deploy" / "prometheus" / "wsprobe.rules.yml"
#: The oldest Kubernetes that labels StatefulSet pods with their index, and the newest
#: kubernetes-validate knows.
K8S_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
KUSTOMIZATIONS = ("base", "overlays/example")
CRD_GROUP = "monitoring.coreos.com"


@functools.cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    """Every object of ``kubectl kustomize deploy/kubernetes/PATH``."""
    kubectl = require_tool("kubectl", install="kubectl with kustomize v5, on the machine image")
    proc = subprocess.run(
        [kubectl, "kustomize", str(KUBE / path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def _one(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation: an
    object with declared properties accepts no other field."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def _crd_validator(kind: str, version: str) -> jsonschema.protocols.Validator:
    path = SCHEMAS / f"{kind.lower()}-{CRD_GROUP}-{version}.json"
    schema = _strict(json.loads(path.read_text(encoding="utf-8")))
    # Kubernetes adds these to every object; the CRD schemas leave metadata open.
    schema["properties"].setdefault("apiVersion", {"type": "string"})
    schema["properties"].setdefault("kind", {"type": "string"})
    schema["properties"]["metadata"] = {"type": "object"}
    validator: jsonschema.protocols.Validator = jsonschema.Draft7Validator(schema)
    return validator


def validate(obj: dict[str, Any]) -> list[str]:
    """Every schema error of ``obj`` (empty when valid)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    if group == CRD_GROUP:
        return [
            f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _crd_validator(obj["kind"], version).iter_errors(obj)
        ]
    errors = []
    for k8s in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, k8s, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name} (Kubernetes {k8s}): {exc.path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {obj['apiVersion']} {obj['kind']} in {k8s}")
    return errors


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_rendered_object_is_valid(path: str) -> None:
    """Each object kustomize renders passes strict validation against its schema."""
    objects = render(path)
    kinds = {o["kind"] for o in objects}
    assert {"StatefulSet", "Service", "ConfigMap", "PodMonitor", "PrometheusRule"} <= kinds
    errors = [error for obj in objects for error in validate(obj)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        ("StatefulSet", lambda o: o["spec"].__setitem__("replica", 3), "replica"),
        ("StatefulSet", lambda o: o["spec"].__setitem__("replicas", "three"), "three"),
        ("PodMonitor", lambda o: o["spec"].__setitem__("podMetricEndpoints", []), "podMetric"),
        (
            "PrometheusRule",
            lambda o: o["spec"]["groups"][0]["rules"][0].__setitem__("expresion", "up"),
            "expresion",
        ),
    ],
    ids=["k8s-unknown-field", "k8s-wrong-type", "crd-unknown-field", "crd-nested-typo"],
)
def test_validation_catches_mistakes(kind: str, mutate: Any, expected: str) -> None:
    """A typo or a wrong type in a rendered object is reported: the validation can fail."""
    obj = copy.deepcopy(_one(render("overlays/example"), kind))
    mutate(obj)
    errors = validate(obj)
    assert errors
    assert any(expected in error for error in errors), errors


def test_statefulset_shards_by_ordinal() -> None:
    """Pods take their shard from the pod-index label, and the count matches replicas."""
    for path in KUSTOMIZATIONS:
        sts = _one(render(path), "StatefulSet")
        container = sts["spec"]["template"]["spec"]["containers"][0]
        args = container["command"] + container["args"]
        assert args[args.index("--shard") + 1] == "auto"
        env = {e["name"]: e for e in container["env"]}
        field = env["WSPROBE_POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
        assert int(env["WSPROBE_SHARD_COUNT"]["value"]) == sts["spec"]["replicas"], path


def test_pods_are_locked_down() -> None:
    """Non-root, read-only root FS, no capabilities, no privilege escalation, probes and
    resources set, state on a volume claimed per pod."""
    sts = _one(render("overlays/example"), "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user (Dockerfile)
    sec = container["securityContext"]
    assert sec["readOnlyRootFilesystem"] is True
    assert sec["allowPrivilegeEscalation"] is False
    assert sec["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["state"] == "/var/lib/wsprobe"
    assert "state" in claims


def test_monitoring_objects_point_at_the_pods() -> None:
    """The Service and PodMonitor select the pods' labels and port; job is "wsprobe" as
    the rules expect; the Probe drives /probe."""
    objects = render("overlays/example")
    sts = _one(objects, "StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in sts["spec"]["template"]["spec"]["containers"][0]["ports"]}
    service = _one(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    monitor = _one(objects, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= port_names
    assert pod_labels[monitor["spec"]["jobLabel"]] == "wsprobe"
    probe = _one(objects, "Probe")
    assert probe["spec"]["prober"]["path"] == "/probe"
    assert "module" not in probe["spec"]  # /probe refuses module=


def test_prometheusrule_matches_the_rules_file() -> None:
    """The PrometheusRule holds exactly the groups of deploy/prometheus/wsprobe.rules.yml,
    and the committed file is what the generator writes."""
    spec = importlib.util.spec_from_file_location("render", KUBE / "render_prometheusrule.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (KUBE / "base" / "prometheusrule.yaml").read_text(encoding="utf-8")
    assert committed == module.render(), "run python deploy/kubernetes/render_prometheusrule.py"
    rule = _one(render("overlays/example"), "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_config_in_the_configmaps_is_valid(path: str, tmp_path: Path) -> None:
    """The agent config and check files the pods mount pass ``wsprobe check-config`` (with
    the Secret's variables and the pod's environment set) and the JSON Schema."""
    objects = render(path)
    sts = _one(objects, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    by_name = {o["metadata"]["name"]: o for o in objects if o["kind"] in ("ConfigMap", "Secret")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    root = tmp_path / "root"
    for mount in container["volumeMounts"]:
        source = volumes.get(mount["name"], {}).get("configMap")
        if source is None:
            continue
        folder = root / mount["mountPath"].lstrip("/")
        folder.mkdir(parents=True)
        for file_name, text in by_name[source["name"]]["data"].items():
            (folder / file_name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSPROBE_")}
    env |= {e["name"]: e["value"] for e in container["env"] if "value" in e}
    for source in container.get("envFrom", []):
        secret = by_name.get(source["secretRef"]["name"])
        if secret is not None:
            env |= {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    args = container["args"]
    config = root / args[args.index("-c") + 1].lstrip("/")
    # Each file the pods mount also passes the JSON Schema editors check it with.
    schema = json.loads((REPO / "schema" / "wsprobe.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(root.rglob("*.yaml")):
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, f"{path.relative_to(root)}: {errors}"
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", "-c", str(config)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ": OK:" in proc.stdout
