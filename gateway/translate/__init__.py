"""Pure translators between the OpenAI HTTP shapes and the gRPC contract.

No I/O, no Starlette, no grpc: only dicts in, protobuf messages and dicts out.
"""
