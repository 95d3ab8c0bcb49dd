"""Request size limits, checked before the work they bound (each a 400 naming the param)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.translate import fields as f
from runinfra.chat.v1 import chat_service_pb2 as pb


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one request may ask for: tools, messages (input items), content parts over
    the whole request, and bytes of serialized JSON schemas (tool parameters, json_schema)."""

    max_tools: int = 128
    max_messages: int = 2048
    max_content_parts: int = 10_000
    max_schema_bytes: int = 1024 * 1024
    # Image URLs naming loopback, private or link-local addresses, or localhost: refused
    # (a model server that fetches them would reach inside the network) unless allowed.
    allow_private_image_urls: bool = False

    def count(self, value: object, limit: int, param: str, what: str) -> None:
        """At most `limit` entries in the array `value` (other types are checked elsewhere)."""
        if isinstance(value, list) and len(value) > limit:
            raise f.invalid_value(param, f"at most {limit} {what} are allowed, got {len(value)}.")

    def tools(self, value: object) -> None:
        """At most `max_tools` functions, counting those inside namespace tools."""
        self.count(value, self.max_tools, "tools", "tools")
        if isinstance(value, list):
            inner = [t.get("tools") for t in value if isinstance(t, dict)]
            total = len(value) + sum(len(m) - 1 for m in inner if isinstance(m, list))
            if total > self.max_tools:
                raise f.invalid_value(
                    "tools", f"at most {self.max_tools} tools are allowed, got {total}."
                )

    def messages(self, value: object, param: str, part_keys: tuple[str, ...]) -> None:
        """The message count, then the content parts of all messages together (the arrays
        under `part_keys` of each message), before any of them is translated."""
        self.count(value, self.max_messages, param, "messages")
        if not isinstance(value, list):
            return
        total = 0
        for i, item in enumerate(value):
            for key in part_keys:
                parts = item.get(key) if isinstance(item, dict) else None
                total += len(parts) if isinstance(parts, list) else 0
                if total > self.max_content_parts:
                    raise f.invalid_value(
                        f"{param}[{i}].{key}",
                        f"at most {self.max_content_parts} content parts are allowed over all "
                        "messages of a request.",
                    )

    def schemas(
        self, tools: Iterable[pb.Tool], response_format: pb.ResponseFormat | None, param: str
    ) -> None:
        """The serialized tool parameters and json_schema together; `param` names the
        response format (named when the tools alone are within the limit)."""
        size = sum(len(t.parameters) for t in tools)
        where = "tools" if size > self.max_schema_bytes else param
        if response_format is not None:
            size += len(response_format.json_schema.schema)
        if size > self.max_schema_bytes:
            raise f.invalid_value(
                where,
                f"the JSON schemas of tools and response format total {size} bytes; "
                f"at most {self.max_schema_bytes} are allowed.",
            )

    def image_urls(self, messages: Iterable[pb.Message], param: str) -> None:
        """No image URL names a host inside the network, unless allowed."""
        if self.allow_private_image_urls:
            return
        for i, message in enumerate(messages):
            for j, part in enumerate(message.content):
                if part.WhichOneof("part") == "image" and _internal_host(part.image.url):
                    raise f.invalid_value(
                        param.format(i=i, j=j),
                        "image URLs may not name localhost or a loopback, private or "
                        "link-local address.",
                    )


def _internal_host(url: str) -> bool:
    if not url.startswith("https://"):
        return False  # data URLs: nothing to fetch
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: where it resolves is the fetcher's concern
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


DEFAULT = Limits()
