"""Names of the contract that its callers and its implementations both use."""

from __future__ import annotations

from runinfra.chat.v1 import chat_service_pb2 as pb

# The fully qualified service name: health checks and reflection are keyed by it.
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ChatService"].full_name
