"""What the anomaly detectors emit fits GuardDuty's ``Anomaly`` shape in botocore's service model."""

from __future__ import annotations

from typing import Any

import botocore.loaders
import orjson

from .test_types import CASES, WHEN
from .traffic import ATTACK_AGENT, VPS_IP, anomalies, habits, pipeline

SHAPES = botocore.loaders.Loader().load_service_model("guardduty", "service-2")["shapes"]
SCALARS = {"string": str, "long": int, "integer": int, "boolean": bool, "double": (int, float)}


def conforms(value: Any, shape_name: str, path: str) -> None:
    shape = SHAPES[shape_name]
    kind = shape["type"]
    if kind == "structure":
        members = {m.get("locationName", name): m["shape"] for name, m in shape["members"].items()}
        assert isinstance(value, dict), path
        for key, item in value.items():
            assert key in members, f"{path}.{key} is not in {shape_name}"
            conforms(item, members[key], f"{path}.{key}")
        for required in shape.get("required", ()):
            assert shape["members"][required].get("locationName", required) in value, f"{path}.{required} missing"
    elif kind == "map":
        assert isinstance(value, dict), path
        for key, item in value.items():
            conforms(item, shape["value"]["shape"], f"{path}.{key}")
    elif kind == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            conforms(item, shape["member"]["shape"], f"{path}[{index}]")
    else:
        assert isinstance(value, SCALARS[kind]), f"{path}: {value!r} is not a {kind}"
        assert kind == "boolean" or not isinstance(value, bool), f"{path}: {value!r} is not a {kind}"
        if "enum" in shape:
            assert value in shape["enum"], f"{path}: {value!r} not in {shape_name}"


def test_every_type_emits_a_valid_finding_anomaly_and_additional_info() -> None:
    pipe = pipeline()
    anomalies(pipe, habits())
    for index, (finding_type, _, action) in enumerate(CASES):
        found = anomalies(pipe, [action(WHEN.replace(minute=index), ip=VPS_IP, agent=ATTACK_AGENT)])
        finding = next(f for f in found if f["type"] == finding_type)
        anomaly = finding["service"]["detection"]["anomaly"]
        conforms(anomaly, "Anomaly", "anomaly")
        conforms(finding, "Finding", "finding")
        assert anomaly["profiles"]["USER"]["kubernetesApi"][0]["profileSubtype"] == "FREQUENT"
        info = orjson.loads(finding["service"]["additionalInfo"]["value"])
        assert info["unusual"]["network"] == "167.99.92.0/24"
        assert "167.99.92.0/24" in finding["description"]
