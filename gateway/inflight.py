"""The in-flight cap: how many API requests run at once, in total and per tenant."""

from __future__ import annotations

from gateway.errors import GatewayError


class InFlight:
    """The in-flight cap: at most `limit` API requests at once, and at most `per_tenant` of
    one tenant (so that one key cannot take them all); a stream counts until it ends."""

    def __init__(self, limit: int, per_tenant: int) -> None:
        self.limit = limit
        self.per_tenant = per_tenant
        self.total = 0
        self.by_tenant: dict[str, int] = {}

    def take(self, tenant: str) -> None:
        """Take a slot for `tenant`, or raise 429."""
        held = self.by_tenant.get(tenant, 0)
        if self.total >= self.limit:
            raise _overloaded(f"Too many requests in flight (limit {self.limit}); retry shortly.")
        if held >= self.per_tenant:
            raise _overloaded(
                f"Too many requests in flight for this API key (limit {self.per_tenant}); "
                "retry shortly."
            )
        self.total += 1
        self.by_tenant[tenant] = held + 1

    def give(self, tenant: str) -> None:
        self.total -= 1
        held = self.by_tenant.pop(tenant) - 1
        if held:
            self.by_tenant[tenant] = held


def _overloaded(message: str) -> GatewayError:
    return GatewayError(
        message, status=429, code="rate_limit_exceeded", headers={"retry-after": "1"}
    )


class Slot:
    """One request's claim on the in-flight cap: `take()` once its body is in (a client that
    never finishes its body holds nothing), given back when the request ends."""

    __slots__ = ("cap", "taken", "tenant")

    def __init__(self, cap: InFlight, tenant: str) -> None:
        self.cap = cap
        self.tenant = tenant
        self.taken = False

    def take(self) -> None:
        if not self.taken:
            self.cap.take(self.tenant)
            self.taken = True

    def give(self) -> None:
        if self.taken:
            self.taken = False
            self.cap.give(self.tenant)
