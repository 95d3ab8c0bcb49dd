"""A deterministic gRPC ChatService backend for tests and local development."""
