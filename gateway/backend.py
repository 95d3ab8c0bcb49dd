"""ChatBackend: the gateway's one gRPC client (the only gateway module that imports grpc)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from gateway.errors import BackendError
from gateway.pb import chat_service_pb2 as pb
from gateway.pb import chat_service_pb2_grpc as pb_grpc


class ChatBackend:
    """One channel per process, shared by every request."""

    def __init__(self, target: str, *, max_message_bytes: int) -> None:
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )
        self._stub = pb_grpc.ChatServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def chat(
        self, request: pb.ChatRequest, *, request_id: str, timeout: float | None = None
    ) -> AsyncIterator[pb.ChatChunk]:
        """Stream the reply; gRPC errors become BackendError; closing the iterator cancels."""
        call = self._stub.Chat(request, timeout=timeout, metadata=(("x-request-id", request_id),))
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as exc:
            raise BackendError(exc.code().name, exc.details() or "") from None
        finally:
            call.cancel()

    async def list_models(self, *, timeout: float | None = None) -> list[pb.Model]:
        try:
            reply = await self._stub.ListModels(pb.ListModelsRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise BackendError(exc.code().name, exc.details() or "") from None
        return list(reply.models)
