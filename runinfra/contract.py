"""Names of the contract that its callers and its implementations both use."""

from __future__ import annotations

from runinfra.chat.v1 import chat_service_pb2 as pb

# The fully qualified service name: health checks and reflection are keyed by it.
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ChatService"].full_name

# gRPC status code name -> HTTP status, as grpc-gateway maps them (runtime/errors.go): the
# gateway answers these statuses, and the SDK's gRPC client raises the same error classes.
GRPC_TO_HTTP: dict[str, int] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}

# The ranges the ChatRequest comments document (OpenAI's limits): callers validate against
# them, and a backend may reject a request outside them as INVALID_ARGUMENT.
MAX_STOP_SEQUENCES = 4
MAX_TOP_LOGPROBS = 20
PENALTY_LIMIT = 2  # frequency_penalty and presence_penalty: -2 to 2
LOGIT_BIAS_LIMIT = 100  # each logit_bias value: -100 to 100
