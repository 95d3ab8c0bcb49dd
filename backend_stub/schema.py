"""Minimal JSON instances of JSON schemas (pure; used for tool arguments and
json_schema replies), within a budget of nodes and output bytes."""

from __future__ import annotations

_MAX_SCHEMA_DEPTH = 32
MAX_NODES = 50_000  # schema nodes visited for one request (every instance it makes)
MAX_OUTPUT_BYTES = 1024 * 1024  # about the JSON size of those instances together


class BudgetExceeded(ValueError):
    """The instance would cost more than the budget (the request is rejected, not served)."""


class Budget:
    """What one request may spend on minimal instances; `cancel()` (from another thread)
    stops the work at the next node."""

    def __init__(self, nodes: int = MAX_NODES, output_bytes: int = MAX_OUTPUT_BYTES) -> None:
        self.nodes = nodes
        self.output_bytes = output_bytes
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def spend(self, nodes: int = 1, output_bytes: int = 1) -> None:
        if self.cancelled:
            raise BudgetExceeded("the call was cancelled")
        self.nodes -= nodes
        self.output_bytes -= output_bytes
        if self.nodes < 0:
            raise BudgetExceeded(f"the schema needs more than {MAX_NODES} nodes of instance")
        if self.output_bytes < 0:
            raise BudgetExceeded(f"its minimal instance is larger than {MAX_OUTPUT_BYTES} bytes")


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


def _count(value: object, budget: Budget) -> int:
    """A minLength/minItems value, checked against the budget before anything is built."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return 0
    if value > budget.output_bytes:
        raise BudgetExceeded(f"its minimal instance is larger than {MAX_OUTPUT_BYTES} bytes")
    return value


def _minimal_string(schema: dict[str, object], budget: Budget) -> str:
    low, high = _count(schema.get("minLength"), budget), schema.get("maxLength")
    text = "stub"
    if low > len(text):
        text += "x" * (low - len(text))
    text = text[: max(0, high)] if isinstance(high, int) and not isinstance(high, bool) else text
    budget.spend(0, len(text) + 2)
    return text


def minimal_instance(
    schema: object, root: object = None, depth: int = 0, budget: Budget | None = None
) -> object:
    """A small JSON value valid against `schema`.

    const, then enum (first value), then anyOf/oneOf (first branch) win over
    `type`; objects get only their required properties; strings are "stub"
    (padded/cut to minLength/maxLength), numbers 0 (moved into
    minimum/maximum), booleans false, arrays [] (or minItems copies of the
    items' instance). A schema with no usable type gives {}. Local `$ref`
    (`#/$defs/X`, `#/definitions/X`, any JSON pointer) and `allOf` are folded in.
    Every node visited and every byte made is charged to `budget` (a fresh one when None):
    BudgetExceeded past it.
    """
    budget = Budget() if budget is None else budget
    budget.spend()
    root = schema if root is None else root
    node = _deref(schema, root, depth)
    if "const" in node:
        return node["const"]
    if _as_list(node.get("enum")):
        return _as_list(node["enum"])[0]
    for key in ("anyOf", "oneOf"):
        if _as_list(node.get(key)):
            return minimal_instance(_as_list(node[key])[0], root, depth + 1, budget)
    return _minimal_of_type(node, _type_of(node), root, depth, budget)


def _minimal_of_type(
    node: dict[str, object], kind: str | None, root: object, depth: int, budget: Budget
) -> object:
    if kind == "object" or kind is None:
        props = _as_dict(node.get("properties"))
        required = [str(r) for r in _as_list(node.get("required"))]
        budget.spend(0, 2 + sum(len(name) + 4 for name in required))
        return {
            name: minimal_instance(props.get(name, {}), root, depth + 1, budget)
            for name in required
        }
    if kind == "array":
        n = _count(node.get("minItems"), budget)
        return [minimal_instance(node.get("items", {}), root, depth + 1, budget) for _ in range(n)]
    if kind in ("number", "integer"):
        return _minimal_number(node, kind == "integer")
    if kind == "string":
        return _minimal_string(node, budget)
    simple: dict[str, object] = {"boolean": False, "null": None}
    if kind not in simple:
        raise ValueError(f"unknown schema type {kind!r}")
    return simple[kind]
