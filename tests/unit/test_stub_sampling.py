"""The stub's sampling behaviour, as README "The stub backend" documents it."""

from __future__ import annotations

import pytest

from backend_stub import behaviour
from runinfra.chat.v1 import chat_service_pb2 as pb


def request(text: str, **fields: object) -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
    return pb.ChatRequest(model="stub-echo", messages=[message], **fields)  # type: ignore[arg-type]


def test_the_reply_ends_before_the_first_stop_sequence() -> None:
    plan = behaviour.plan(request("a b STOP c END d", stop=["END", "STOP"]))
    assert [c.text for c in plan.chunks] == ["a ", "b "]
    assert plan.finish_reason == pb.FINISH_REASON_STOP
    assert plan.chunks[-1].usage.output_tokens == 2


def test_a_stop_sequence_inside_a_word_cuts_the_word() -> None:
    plan = behaviour.plan(request("alpha beta", stop=["ta"]))
    assert "".join(c.text for c in plan.chunks) == "alpha be"


def test_a_stop_sequence_at_the_start_leaves_one_empty_chunk() -> None:
    plan = behaviour.plan(request("Observation: x", stop=["Obs"]))
    (only,) = plan.chunks
    assert (only.text, only.finish_reason, only.usage.output_tokens) == ("", 1, 0)


def test_stop_and_max_output_tokens_together() -> None:
    plan = behaviour.plan(request("a b c d STOP", stop=["STOP"], max_output_tokens=2))
    assert [c.text for c in plan.chunks] == ["a ", "b "]
    assert plan.finish_reason == pb.FINISH_REASON_LENGTH


def test_tool_calls_are_not_cut() -> None:
    tool = pb.Tool(name="get_time")
    plan = behaviour.plan(request("get_time", stop=["time"], tools=[tool]))
    assert plan.tool_calls[0].name == "get_time"


def test_seed_and_penalties_change_nothing() -> None:
    plain = behaviour.plan(request("a b c"))
    tuned = behaviour.plan(
        request("a b c", seed=3, frequency_penalty=1.5, presence_penalty=-2, logit_bias={7: -100})
    )
    assert tuned.chunks == plain.chunks


def test_logprobs_as_documented() -> None:
    plan = behaviour.plan(request("Hello there.", logprobs=True, top_logprobs=3))
    first, second = (c.logprobs[0] for c in plan.chunks)
    assert (first.token, first.logprob, first.bytes) == ("Hello ", -0.5, b"Hello ")
    assert [(t.token, t.logprob) for t in first.top_logprobs] == [
        ("Hello ", -0.5),
        ("Hello1 ", -1.5),
        ("Hello2 ", -2.5),
    ]
    assert (second.token, second.logprob) == ("there.", -0.6)
    assert [t.token for t in second.top_logprobs] == ["there.", "there.1", "there.2"]


def test_logprobs_only_when_asked_and_none_with_zero_top() -> None:
    assert not any(c.logprobs for c in behaviour.plan(request("a b")).chunks)
    plan = behaviour.plan(request("a b", logprobs=True))
    assert [len(c.logprobs[0].top_logprobs) for c in plan.chunks] == [0, 0]


def test_a_buffered_reply_carries_every_logprob() -> None:
    plan = behaviour.plan(request("a bb ccc", logprobs=True, buffered=True))
    (only,) = plan.chunks
    assert [(t.token, t.logprob) for t in only.logprobs] == [
        ("a ", -0.1),
        ("bb ", -0.2),
        ("ccc", -0.3),
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"stop": ["a", "b", "c", "d", "e"]},
        {"stop": [""]},
        {"top_logprobs": 21, "logprobs": True},
        {"top_logprobs": 2**31 - 1, "logprobs": True},  # would be 2 billion alternatives a word
        {"top_logprobs": -1},
        {"frequency_penalty": 2.5},
        {"presence_penalty": -3},
        {"logit_bias": {1: 101}},
    ],
)
def test_values_outside_the_documented_ranges_are_invalid(fields: dict[str, object]) -> None:
    with pytest.raises(behaviour.RequestError) as info:
        behaviour.plan(request("a b", **fields))
    assert info.value.kind == "invalid_argument"


def test_the_edges_of_the_ranges_are_served() -> None:
    edges = request(
        "a b", stop=["1", "2", "3", "4"], logprobs=True, top_logprobs=20,
        frequency_penalty=-2, presence_penalty=2, logit_bias={1: -100, 2: 100},
    )  # fmt: skip
    assert len(behaviour.plan(edges).chunks[0].logprobs[0].top_logprobs) == 20
