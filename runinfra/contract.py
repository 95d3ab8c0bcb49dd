"""Names of the contract that its callers and its implementations both use."""

from __future__ import annotations

from runinfra.chat.v1 import chat_service_pb2 as pb

# The fully qualified service name: health checks and reflection are keyed by it.
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ChatService"].full_name

# The ranges the ChatRequest comments document (OpenAI's limits): callers validate against
# them, and a backend may reject a request outside them as INVALID_ARGUMENT.
MAX_STOP_SEQUENCES = 4
MAX_TOP_LOGPROBS = 20
PENALTY_LIMIT = 2  # frequency_penalty and presence_penalty: -2 to 2
LOGIT_BIAS_LIMIT = 100  # each logit_bias value: -100 to 100
