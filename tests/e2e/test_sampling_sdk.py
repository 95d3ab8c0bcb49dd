"""The sampling surface (stop, seed, penalties, logit bias, logprobs, n) through the official
openai SDK against the real gateway and stub; every body, chunk and event validated strictly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from backend_stub import behaviour
from tests.support import (
    Servers,
    strict_chat_chunk,
    strict_chat_completion,
    strict_event,
    strict_response,
)

REACT = "Thought: look it up. Observation: 42 is the answer"
BEFORE_STOP = "Thought: look it up. "


def raw_json(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=True)  # type: ignore[no-any-return]


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def expected_logprobs(text: str, top: int) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """The README's definition, recomputed here: a tenth per character of each word, and
    alternative k the word with k after it, k units less likely."""
    out = []
    for token in behaviour.split_words(text):
        word = token.strip()
        alternatives = [(token, -len(word) / 10)]
        alternatives += [(token.replace(word, f"{word}{k}", 1), -(len(word) + 10 * k) / 10)
                         for k in range(1, top)]  # fmt: skip
        out.append((token, -len(word) / 10, alternatives))
    return out


# --- stop ---------------------------------------------------------------------------------


def test_stop_ends_the_reply_early(client: OpenAI, servers: Servers) -> None:
    for stop in ("Observation:", ["\n\n", "Observation:", "answer"]):
        completion = client.chat.completions.create(
            model="stub-echo", messages=user(REACT), stop=stop, seed=7, presence_penalty=0.5
        )
        choice = completion.choices[0]
        assert (choice.message.content, choice.finish_reason) == (BEFORE_STOP, "stop")
        assert completion.usage is not None and completion.usage.completion_tokens == 4
        strict_chat_completion(raw_json(completion))
        sent = servers.stub.service.calls[-1]
        assert list(sent.stop) == ([stop] if isinstance(stop, str) else stop)
        assert (sent.seed, sent.presence_penalty) == (7, 0.5)


def test_stop_ends_the_stream_the_same_way(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="stub-echo", messages=user(REACT), stop=["Observation:"], stream=True
        )
    )
    for chunk in chunks:
        strict_chat_chunk(raw_json(chunk))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == BEFORE_STOP
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop"]


# --- logprobs -------------------------------------------------------------------------------


def test_chat_logprobs_non_streaming(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="stub-echo", messages=user("Hello there, gateway!"), logprobs=True, top_logprobs=3
    )
    strict_chat_completion(raw_json(completion))
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    got = [
        (t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs])
        for t in logprobs.content
    ]
    assert got == expected_logprobs("Hello there, gateway!", 3)
    assert all(bytes(t.bytes or []) == t.token.encode() for t in logprobs.content)
    assert "".join(t.token for t in logprobs.content) == completion.choices[0].message.content


def test_chat_logprobs_streaming(client: OpenAI) -> None:
    text = "naïve café ünïcode"
    stream = client.chat.completions.create(
        model="stub-echo", messages=user(text), logprobs=True, top_logprobs=1, stream=True
    )
    got = []
    for chunk in stream:
        strict_chat_chunk(raw_json(chunk))
        choice = chunk.choices[0]
        if choice.delta.content:  # every text chunk carries its own tokens, aligned
            assert choice.logprobs is not None and choice.logprobs.content is not None
            assert "".join(t.token for t in choice.logprobs.content) == choice.delta.content
            got += [(t.token, t.logprob, bytes(t.bytes or [])) for t in choice.logprobs.content]
    assert got == [(tok, lp, tok.encode()) for tok, lp, _ in expected_logprobs(text, 1)]


def test_no_logprobs_unless_asked(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="stub-echo", messages=user("a b"))
    assert completion.choices[0].logprobs is None
    for chunk in client.chat.completions.create(
        model="stub-echo", messages=user("a b"), stream=True
    ):
        assert chunk.choices[0].logprobs is None


def test_responses_logprobs_non_streaming(client: OpenAI, servers: Servers) -> None:
    response = client.responses.create(
        model="stub-echo",
        input="Hello there",
        include=["message.output_text.logprobs"],
        top_logprobs=2,
    )
    strict_response(raw_json(response))
    assert response.top_logprobs == 2
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text"
    got = [(t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs])
           for t in part.logprobs or []]  # fmt: skip
    assert got == expected_logprobs("Hello there", 2)
    assert servers.stub.service.calls[-1].logprobs


def test_responses_logprobs_streaming(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="stub-echo",
            input="one two three",
            include=["message.output_text.logprobs"],
            stream=True,
        )
    )
    for event in events:
        strict_event(raw_json(event))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [[lp.token for lp in d.logprobs] for d in deltas] == [["one "], ["two "], ["three"]]
    (done,) = [e for e in events if e.type == "response.output_text.done"]
    assert [(lp.token, lp.logprob) for lp in done.logprobs] == [
        ("one ", -0.3),
        ("two ", -0.3),
        ("three", -0.5),
    ]
    final = events[-1].response  # type: ignore[union-attr]
    assert [lp.token for lp in final.output[0].content[0].logprobs] == ["one ", "two ", "three"]


# --- n --------------------------------------------------------------------------------------


def test_n_choices_non_streaming(client: OpenAI, servers: Servers) -> None:
    calls = len(servers.stub.service.calls)
    one = client.chat.completions.create(model="stub-echo", messages=user("one two three"))
    three = client.chat.completions.create(
        model="stub-echo", messages=user("one two three"), n=3, logprobs=True
    )
    strict_chat_completion(raw_json(three))
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert {c.message.content for c in three.choices} == {"one two three"}
    assert all(c.logprobs is not None for c in three.choices)
    assert len(servers.stub.service.calls) == calls + 4
    assert one.usage is not None and three.usage is not None
    assert three.usage.prompt_tokens == one.usage.prompt_tokens  # one prompt
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens
    assert three.usage.total_tokens == one.usage.prompt_tokens + 3 * one.usage.completion_tokens


def test_n_choices_streaming_interleaved(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="stub-slow",
            messages=user("a b c d"),
            n=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        strict_chat_chunk(raw_json(chunk))
    assert len({c.id for c in chunks}) == 1
    *choice_chunks, usage = chunks
    order = [c.choices[0].index for c in choice_chunks if c.choices[0].delta.content]
    assert sorted(set(order)) == [0, 1, 2]
    assert order != sorted(order), "the three streams arrive interleaved"
    for index in range(3):
        mine = [c.choices[0] for c in choice_chunks if c.choices[0].index == index]
        assert mine[0].delta.role == "assistant"
        assert "".join(c.delta.content or "" for c in mine) == "a b c d"
        assert [c.finish_reason for c in mine if c.finish_reason] == ["stop"]
    assert usage.choices == [] and usage.usage is not None
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (
        4,
        12,
    )  # 1 prompt, 3 replies


def test_n_disconnect_cancels_every_call(client: OpenAI, servers: Servers) -> None:
    stream = client.chat.completions.create(
        model="stub-slow", messages=user(" ".join(["word"] * 200)), n=3, stream=True
    )
    request_id = stream.response.headers["x-request-id"]
    assert next(iter(stream)).choices[0].index in (0, 1, 2)
    stream.close()
    started = time.monotonic()
    assert servers.stub.service.wait_cancelled(request_id, timeout=2.0, count=3)
    assert time.monotonic() - started < 1.0
    assert servers.stub.service.cancelled.count(request_id) == 3


def test_n_disconnect_cancels_every_call_non_streaming(servers: Servers) -> None:
    body = {"model": "stub-slow", "messages": user(" ".join(["w"] * 100)), "n": 3}
    with httpx.Client(base_url=servers.url, timeout=0.3) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", json=body)
    request_id = servers.stub.service.calls[-1].request_id
    assert [c.request_id for c in servers.stub.service.calls[-3:]] == [request_id] * 3
    assert servers.stub.service.wait_cancelled(request_id, timeout=2.0, count=3)


@pytest.fixture(scope="module")
def no_retries() -> Iterator[Servers]:
    s = Servers(backend_retries=0)
    yield s
    s.close()


def test_n_one_failed_call_fails_the_completion(no_retries: Servers) -> None:
    """stub-fail-once fails one of the three calls (the first of the request id)."""
    sdk = OpenAI(base_url=no_retries.url + "/v1", api_key="k", max_retries=0)
    with sdk, pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(model="stub-fail-once", messages=user("a b"), n=3)
    assert info.value.status_code == 503


# --- bad values -----------------------------------------------------------------------------

BAD: list[tuple[dict[str, Any], str]] = [
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": [""]}, "stop"),
    ({"stop": ["a", 1]}, "stop[1]"),
    ({"stop": 5}, "stop"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": "yes"}, "logprobs"),
    ({"n": 0}, "n"),
    ({"n": 9}, "n"),
    ({"n": True}, "n"),
    ({"n": 1.5}, "n"),
    ({"frequency_penalty": 2.5}, "frequency_penalty"),
    ({"presence_penalty": -2.01}, "presence_penalty"),
    ({"presence_penalty": "high"}, "presence_penalty"),
    ({"logit_bias": {"hello": 5}}, "logit_bias"),
    ({"logit_bias": {"1.5": 5}}, "logit_bias"),
    ({"logit_bias": {"-3": 5}}, "logit_bias"),
    ({"logit_bias": {"9" * 5000: 5}}, "logit_bias"),
    ({"logit_bias": {"50256": 101}}, "logit_bias"),
    ({"logit_bias": {"50256": 0.5}}, "logit_bias"),
    ({"logit_bias": [1, 2]}, "logit_bias"),
    ({"seed": "42"}, "seed"),
    ({"seed": 2**63}, "seed"),
]


@pytest.mark.parametrize(("fields", "param"), BAD)
def test_bad_values_are_400_and_never_reach_the_backend(
    client: OpenAI, servers: Servers, fields: dict[str, Any], param: str
) -> None:
    calls = len(servers.stub.service.calls)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="stub-echo", messages=user("hi"), extra_body=fields)
    assert info.value.param == param
    assert len(servers.stub.service.calls) == calls


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": "3"}, "top_logprobs"),
        ({"include": ["message.output_text.logprobs", "nonsense"]}, "include"),
    ],
)
def test_responses_bad_values_are_400(
    client: OpenAI, servers: Servers, fields: dict[str, Any], param: str
) -> None:
    calls = len(servers.stub.service.calls)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="stub-echo", input="hi", extra_body=fields)
    assert info.value.param == param
    assert len(servers.stub.service.calls) == calls
