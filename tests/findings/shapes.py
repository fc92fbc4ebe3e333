"""Check a JSON document against a shape of a botocore service model: members, required, types, enums,
lengths and patterns, the way the service validates its input."""

from __future__ import annotations

import re
from typing import Any

import botocore.loaders

SCALARS = {"string": (str,), "boolean": (bool,), "integer": (int,), "long": (int,), "double": (int, float),
           "float": (int, float), "timestamp": (int, float, str)}


class ShapeChecker:
    def __init__(self, service: str, *, wire_names: bool) -> None:
        self.shapes = botocore.loaders.Loader().load_service_model(service, "service-2")["shapes"]
        self.wire_names = wire_names

    def check(self, value: Any, shape_name: str, path: str) -> None:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            assert isinstance(value, dict), f"{path}: {shape_name} must be an object"
            members = {self._name(n, m): m["shape"] for n, m in shape["members"].items()}
            for key, item in value.items():
                assert key in members, f"{path}.{key} is not a member of {shape_name}"
                self.check(item, members[key], f"{path}.{key}")
            for required in shape.get("required", ()):
                wire = self._name(required, shape["members"][required])
                assert wire in value, f"{path}.{wire} is required by {shape_name}"
        elif kind == "list":
            assert isinstance(value, list), f"{path}: {shape_name} must be a list"
            for index, item in enumerate(value):
                self.check(item, shape["member"]["shape"], f"{path}[{index}]")
        elif kind == "map":
            assert isinstance(value, dict), f"{path}: {shape_name} must be a map"
            for key, item in value.items():
                self.check(key, shape["key"]["shape"], f"{path}<key {key!r}>")
                self.check(item, shape["value"]["shape"], f"{path}.{key}")
        else:
            assert isinstance(value, SCALARS[kind]) and not (kind != "boolean" and isinstance(value, bool)), (
                f"{path}: {value!r} is not a {kind}")
            if "enum" in shape:
                assert value in shape["enum"], f"{path}: {value!r} not in {shape_name} enum"
            if kind == "string":
                assert shape.get("min", 0) <= len(value) <= shape.get("max", 10**9), f"{path}: length out of bounds"
                if "pattern" in shape:
                    assert re.fullmatch(shape["pattern"], value, re.DOTALL), f"{path}: {value!r} !~ {shape['pattern']}"
            if kind in ("integer", "long", "double") and ("min" in shape or "max" in shape):
                assert shape.get("min", -(10**18)) <= value <= shape.get("max", 10**18), f"{path}: {value} out of range"

    def _name(self, name: str, member: dict[str, Any]) -> str:
        return member.get("locationName", name) if self.wire_names else name
