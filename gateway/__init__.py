"""OpenAI-compatible HTTP gateway in front of a gRPC ChatService."""
