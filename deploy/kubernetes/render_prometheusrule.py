"""Write base/prometheusrule.yaml from deploy/prometheus/wsprobe.rules.yml.

kustomize cannot read files outside a kustomization's folder, so the PrometheusRule is
generated and committed; tests/deploy/test_kubernetes.py fails when it is out of date.

    python deploy/kubernetes/render_prometheusrule.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "wsprobe.rules.yml"
OUTPUT = HERE / "base" / "prometheusrule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/wsprobe.rules.yml by\n"
    "# deploy/kubernetes/render_prometheusrule.py: edit the rules file, then run it.\n"
)


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL, descriptions) as ``|`` blocks, readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    """The PrometheusRule manifest holding every group of the rules file."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "wsprobe"},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(rule, Dumper=_Dumper, sort_keys=False, width=100)


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
