"""The runinfra SDK takes the sampling fields (stop, seed, penalties, logit bias, logprobs, n)
over HTTP and gRPC, and gives logprobs and n choices back typed; real gateway and stub."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import runinfra
from backend_stub.behaviour import token_logprob
from runinfra.types import TokenLogprob
from tests.support import Servers

REACT = [{"role": "user", "content": "Thought: look it up. Observation: 42"}]


@pytest.fixture()
def sdk(servers: Servers) -> Iterator[runinfra.RunInfra]:
    with runinfra.RunInfra(base_url=servers.url + "/v1", timeout=30) as client:
        yield client


def stub_logprobs(*tokens: str, top: int) -> list[TokenLogprob]:
    """The stub's documented logprobs, in the SDK's types."""
    out = []
    for token in tokens:
        lp = token_logprob(token, top)
        tops = tuple(
            runinfra.types.TopLogprob(t.token, t.logprob, tuple(t.bytes)) for t in lp.top_logprobs
        )
        out.append(TokenLogprob(lp.token, lp.logprob, tuple(lp.bytes), tops))
    return out


def test_chat_fields_and_typed_logprobs_and_choices(
    sdk: runinfra.RunInfra, servers: Servers
) -> None:
    completion = sdk.chat.completions.create(
        model="stub-echo", messages=REACT, stop="Observation:", seed=5, frequency_penalty=1.0,
        presence_penalty=-1.0, logit_bias={"42": 7}, logprobs=True, top_logprobs=2, n=2,
    )  # fmt: skip
    sent = servers.stub.service.calls[-1]
    assert (list(sent.stop), sent.seed, dict(sent.logit_bias)) == (["Observation:"], 5, {42: 7})
    assert (sent.frequency_penalty, sent.presence_penalty, sent.top_logprobs) == (1.0, -1.0, 2)
    assert [c.index for c in completion.choices] == [0, 1]
    for choice in completion.choices:
        assert (choice.message.content, choice.finish_reason) == ("Thought: look it up. ", "stop")
        assert list(choice.logprobs or ()) == stub_logprobs(
            "Thought: ", "look ", "it ", "up. ", top=2
        )
    assert completion.usage is not None and completion.usage.completion_tokens == 8
    plain = sdk.chat.completions.create(model="stub-echo", messages=REACT)
    assert plain.choices[0].logprobs is None


def test_chat_stream_folds_each_choice(sdk: runinfra.RunInfra) -> None:
    messages = [{"role": "user", "content": "a b c"}]
    with sdk.chat.completions.create(
        model="stub-slow", messages=messages, n=3, logprobs=True, stream=True
    ) as stream:
        chunks = list(stream)
        final = stream.final_completion()
    texts = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert all(c.choices[0].logprobs for c in texts)
    assert [c.index for c in final.choices] == [0, 1, 2]
    for choice in final.choices:
        assert choice.message.content == "a b c"
        assert [t.token for t in choice.logprobs or ()] == ["a ", "b ", "c"]


def test_responses_logprobs_typed(sdk: runinfra.RunInfra) -> None:
    response = sdk.responses.create(
        model="stub-echo", input="Hello there", include=["message.output_text.logprobs"],
        top_logprobs=3,
    )  # fmt: skip
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert list(part.logprobs) == stub_logprobs("Hello ", "there", top=3)
    with sdk.responses.create(
        model="stub-echo", input="Hello there", top_logprobs=1, stream=True
    ) as stream:
        deltas = [e for e in stream if e.type == "response.output_text.delta"]
    assert [[t.token for t in e.logprobs] for e in deltas] == [["Hello "], ["there"]]


def test_bad_values_are_typed_errors(sdk: runinfra.RunInfra, servers: Servers) -> None:
    calls = len(servers.stub.service.calls)
    with pytest.raises(TypeError, match="stop"):
        sdk.chat.completions.create(model="stub-echo", messages=REACT, stop=5)  # type: ignore[call-overload]
    with pytest.raises(runinfra.BadRequestError) as info:
        sdk.chat.completions.create(model="stub-echo", messages=REACT, n=9)
    assert info.value.param == "n"
    assert len(servers.stub.service.calls) == calls


def test_grpc_clients_take_the_same_fields(servers: Servers) -> None:
    target = f"127.0.0.1:{servers.stub.port}"
    with runinfra.SyncChatClient(target, timeout=10) as client:
        reply = client.complete(
            model="stub-echo", messages=REACT[0]["content"], stop=["Observation:"], seed=1,
            logit_bias={3: -100}, presence_penalty=0.5, logprobs=True, top_logprobs=1,
        )  # fmt: skip
    assert (reply.text, reply.finish_reason) == ("Thought: look it up. ", "stop")
    assert [t.token for t in reply.logprobs] == ["Thought: ", "look ", "it ", "up. "]
    assert [len(t.top_logprobs) for t in reply.logprobs] == [1, 1, 1, 1]

    async def stream() -> list[str]:
        async with runinfra.ChatClient(target, timeout=10) as client:
            chunks = client.chat(model="stub-echo", messages="a b", logprobs=True, seed=2)
            return [t.token async for chunk in chunks for t in chunk.logprobs]

    assert asyncio.run(stream()) == ["a ", "b"]
