"""/v1/models with the official openai SDK against the real gateway and stub."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from backend_stub import behaviour
from tests.support import Servers, strict_model


def test_list_models(client: OpenAI) -> None:
    models = list(client.models.list())
    assert [m.id for m in models] == list(behaviour.MODEL_IDS)
    echo = next(m for m in models if m.id == "stub-echo")
    assert (echo.object, echo.created, echo.owned_by) == ("model", 1700000000, "runinfra")


def test_list_body_is_exactly_the_openai_shape(servers: Servers) -> None:
    body = httpx.get(servers.url + "/v1/models", timeout=10).json()
    assert set(body) == {"object", "data"} and body["object"] == "list"
    for model in body["data"]:
        strict_model(model)


def test_retrieve_model(client: OpenAI, servers: Servers) -> None:
    model = client.models.retrieve("stub-slow")
    assert (model.id, model.owned_by) == ("stub-slow", "runinfra")
    strict_model(httpx.get(servers.url + "/v1/models/stub-echo", timeout=10).json())


def test_retrieve_default_is_the_configured_default_model(client: OpenAI) -> None:
    assert client.models.retrieve("default").id == "stub-echo"


def test_retrieve_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert (info.value.param, info.value.code) == ("model", "model_not_found")
    assert isinstance(info.value.body, dict)
    assert set(info.value.body) == {"message", "type", "param", "code"}
