"""Model messages -> the /v1/models list and model objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runinfra.chat.v1 import chat_service_pb2 as pb


def model_dict(model: pb.Model) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": model.created, "owned_by": model.owned_by}


def model_list(models: Iterable[pb.Model]) -> dict[str, Any]:
    return {"object": "list", "data": [model_dict(m) for m in models]}


def find(models: Iterable[pb.Model], model_id: str) -> pb.Model | None:
    return next((m for m in models if m.id == model_id), None)
