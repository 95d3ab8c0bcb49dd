"""How a failed gRPC call becomes the client's error (gateway.backend._error)."""

from __future__ import annotations

import grpc
import pytest

from gateway.backend import _error


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize("side", ["Received", "Sent"])
def test_message_over_the_size_limit_is_400_not_429(side: str) -> None:
    details = f"{side} message larger than max (40000123 vs. 34603008)"
    error = _error(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, details), "req_1")
    assert error.status == 400 and error.code == "reply_too_large"
    assert "retry-after" not in error.headers and "34603008" not in error.message


def test_rate_limit_from_the_backend_is_still_429() -> None:
    error = _error(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down"), "req_1")
    assert error.status == 429 and error.message == "slow down"


def test_transport_details_do_not_reach_the_client() -> None:
    details = "failed to connect to all addresses; last error: ipv4:127.0.0.1:5: Connection refused"
    error = _error(rpc_error(grpc.StatusCode.UNAVAILABLE, details), "req_1")
    assert error.status == 503 and "127.0.0.1" not in error.message
    internal = _error(rpc_error(grpc.StatusCode.INTERNAL, "Traceback /srv/app.py"), "req_1")
    assert "/srv" not in internal.message
