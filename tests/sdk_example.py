"""A typed program that uses every public call of the runinfra SDK. tests/e2e/test_sdk_example.py
runs mypy --strict on this file, then runs it against the real gateway and stub."""

from __future__ import annotations

import asyncio

import runinfra
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.types import ChatCompletion, ChatCompletionChunk, Model, Response, ResponseEvent


def sync_calls(base_url: str) -> list[str]:
    seen: list[str] = []
    with runinfra.RunInfra(base_url=base_url, max_retries=1, timeout=30) as client:
        response: Response = client.responses.create(
            model="stub-echo",
            input="typed hello",
            instructions="Be brief.",
            temperature=0.5,
            idempotency_key=runinfra.AUTO,
            request_id="typed-1",
        )
        seen.append(response.output_text)
        assert response.request_id is not None and not response.replayed
        with client.responses.create(model="stub-echo", input="typed stream", stream=True) as rs:
            events: list[ResponseEvent] = list(rs)
            final: Response = rs.final_response()
        seen.append(final.output_text + f" ({len(events)} events)")
        with client.responses.create(model="stub-echo", input="deltas", stream=True) as rs:
            seen.append("".join(rs.text_deltas()))
        completion: ChatCompletion = client.chat.completions.create(
            model="stub-echo", messages=[{"role": "user", "content": "typed chat"}], max_tokens=8
        )
        seen.append(completion.output_text)
        with client.chat.completions.create(
            model="stub-echo", messages=[{"role": "user", "content": "chat stream"}], stream=True
        ) as cs:
            chunks: list[ChatCompletionChunk] = list(cs)
            seen.append(cs.final_completion().output_text + f" ({len(chunks)} chunks)")
        cs = client.chat.completions.create(
            model="stub-echo", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        seen.append(next(cs.text_deltas()))
        cs.close()
        models: list[Model] = list(client.models.list(timeout=5))
        seen.append(models[0].id)
        try:
            client.responses.create(model="no-such-model", input="x")
        except runinfra.NotFoundError as exc:
            seen.append(f"{exc.status} {exc.code} {exc.client_request_id}")
    return seen


async def async_calls(base_url: str) -> list[str]:
    seen: list[str] = []
    async with runinfra.AsyncRunInfra(base_url=base_url) as client:
        response = await client.responses.create(model="stub-echo", input="async typed")
        seen.append(response.output_text)
        stream = await client.responses.create(model="stub-echo", input="async s", stream=True)
        async with stream:
            seen.append("".join([d async for d in stream.text_deltas()]))
            seen.append((await stream.final_response()).status)
        chat = await client.chat.completions.create(
            model="stub-echo", messages=[{"role": "user", "content": "async chat"}]
        )
        seen.append(chat.output_text)
        chunks = await client.chat.completions.create(
            model="stub-echo", messages=[{"role": "user", "content": "async cs"}], stream=True
        )
        async with chunks:
            seen.append((await chunks.final_completion()).output_text)
        partial = await client.chat.completions.create(
            model="stub-echo", messages=[{"role": "user", "content": "x y"}], stream=True
        )
        seen.append(await anext(partial.text_deltas()))
        await partial.close()
        seen.append(",".join((await client.models.list()).ids[:1]))
    return seen


async def grpc_calls(target: str) -> list[str]:
    async with runinfra.ChatClient(target, timeout=30) as client:
        reply: runinfra.ChatReply = await client.complete(model="stub-echo", messages="grpc typed")
        message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="grpc chunks")])
        texts = [c.text async for c in client.chat(model="stub-echo", messages=[message])]
        models = await client.list_models()
    return [reply.text, "".join(texts), models[0].id]


def sync_grpc_calls(target: str) -> list[str]:
    with runinfra.SyncChatClient(target, max_retries=1) as client:
        reply = client.complete(model="stub-echo", messages="sync grpc", request_id="typed-2")
        texts = [c.text for c in client.chat(model="stub-echo", messages="sync chunks")]
        return [reply.text, "".join(texts), client.list_models()[0].id]


def main(base_url: str, grpc_target: str) -> list[str]:
    seen = sync_calls(base_url) + asyncio.run(async_calls(base_url))
    return seen + asyncio.run(grpc_calls(grpc_target)) + sync_grpc_calls(grpc_target)
