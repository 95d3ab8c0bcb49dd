"""Minimal JSON instances of JSON schemas (pure; used for tool arguments and
json_schema replies)."""

from __future__ import annotations

_MAX_SCHEMA_DEPTH = 32


def _resolve_ref(ref: str, root: object) -> object:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node = root
    for token in [t for t in ref[1:].split("/") if t]:
        key = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"unresolvable $ref {ref!r}")
        node = node[key]
    return node


def _merge_all_of(schema: dict[str, object], root: object, depth: int) -> dict[str, object]:
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    props: dict[str, object] = dict(_as_dict(merged.get("properties")))
    required: list[object] = list(_as_list(merged.get("required")))
    for branch in _as_list(schema["allOf"]):
        part = _deref(branch, root, depth)
        props.update(_as_dict(part.get("properties")))
        required += _as_list(part.get("required"))
        merged = {**part, **merged}
    return {**merged, "properties": props, "required": required}


def _as_dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _deref(schema: object, root: object, depth: int) -> dict[str, object]:
    """`schema` with `$ref` and `allOf` folded in (a non-object schema becomes {})."""
    if depth > _MAX_SCHEMA_DEPTH:
        raise ValueError("schema nests too deeply (recursive required $ref?)")
    node = _as_dict(schema)
    if isinstance(node.get("$ref"), str):
        target = _deref(_resolve_ref(str(node["$ref"]), root), root, depth + 1)
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return _merge_all_of(node, root, depth + 1) if "allOf" in node else node


def _type_of(schema: dict[str, object]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [str(k) for k in kind if k != "null"]
        return kinds[0] if kinds else ("null" if kind else None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    return "array" if "items" in schema else None


def _num(value: object) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _minimal_number(schema: dict[str, object], integer: bool) -> int | float:
    value: int | float = 0
    low, excl = _num(schema.get("minimum")), _num(schema.get("exclusiveMinimum"))
    high = _num(schema.get("maximum"))
    if low is not None and low > value:
        value = low
    if excl is not None and excl >= value:
        value = excl + 1
    if high is not None and high < value:
        value = high
    return int(-(-value // 1)) if integer else value


def _minimal_string(schema: dict[str, object]) -> str:
    low, high = schema.get("minLength"), schema.get("maxLength")
    text = "stub"
    if isinstance(low, int) and low > len(text):
        text += "x" * (low - len(text))
    return text[:high] if isinstance(high, int) else text


def minimal_instance(schema: object, root: object = None, depth: int = 0) -> object:
    """A small JSON value valid against `schema`.

    const, then enum (first value), then anyOf/oneOf (first branch) win over
    `type`; objects get only their required properties; strings are "stub"
    (padded/cut to minLength/maxLength), numbers 0 (moved into
    minimum/maximum), booleans false, arrays [] (or minItems copies of the
    items' instance). A schema with no usable type gives {}. Local `$ref`
    (`#/$defs/X`, `#/definitions/X`, any JSON pointer) and `allOf` are folded in.
    """
    root = schema if root is None else root
    node = _deref(schema, root, depth)
    if "const" in node:
        return node["const"]
    if _as_list(node.get("enum")):
        return _as_list(node["enum"])[0]
    for key in ("anyOf", "oneOf"):
        if _as_list(node.get(key)):
            return minimal_instance(_as_list(node[key])[0], root, depth + 1)
    return _minimal_of_type(node, _type_of(node), root, depth)


def _minimal_of_type(node: dict[str, object], kind: str | None, root: object, depth: int) -> object:
    if kind == "object" or kind is None:
        props = _as_dict(node.get("properties"))
        required = [str(r) for r in _as_list(node.get("required"))]
        return {name: minimal_instance(props.get(name, {}), root, depth + 1) for name in required}
    if kind == "array":
        count = node.get("minItems")
        n = count if isinstance(count, int) else 0
        return [minimal_instance(node.get("items", {}), root, depth + 1) for _ in range(n)]
    if kind in ("number", "integer"):
        return _minimal_number(node, kind == "integer")
    simple: dict[str, object] = {"string": _minimal_string(node), "boolean": False, "null": None}
    if kind not in simple:
        raise ValueError(f"unknown schema type {kind!r}")
    return simple[kind]
