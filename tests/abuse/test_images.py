"""Item 10: image URLs are https or data:image URLs; none names a host inside the network
(the model server that fetches it would reach there) unless a setting allows it."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.support import Servers

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    s.close()


def chat(servers: Servers, url: str) -> httpx.Response:
    part = {"type": "image_url", "image_url": {"url": url}}
    body = {"model": "stub-echo", "messages": [{"role": "user", "content": [part]}]}
    return httpx.post(servers.url + "/v1/chat/completions", json=body, timeout=30)


def responses(servers: Servers, url: str) -> httpx.Response:
    part = {"type": "input_image", "image_url": url}
    body = {"model": "stub-echo", "input": [{"role": "user", "content": [part]}]}
    return httpx.post(servers.url + "/v1/responses", json=body, timeout=30)


REFUSED = [
    "http://example.com/cat.png",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/x.png",
    "https://[::ffff:127.0.0.1]/x.png",
    "https://127.0.0.1:8080/x.png",
    "https://10.1.2.3/x.png",
    "https://192.168.0.1/x.png",
    "https://localhost/x.png",
    "https://api.localhost./x.png",
    "https://0.0.0.0/x.png",
    "data:text/plain;base64,aGVsbG8=",
    "data:image/png;base64,not base64!",
    "data:image/png,rawbytes",
    "data:image/png;base64," + "A" * (28 * 1024 * 1024),  # 21 MB decoded
]


@pytest.mark.parametrize("url", REFUSED, ids=lambda u: u[:40])
def test_refused_image_urls_are_400(servers: Servers, url: str) -> None:
    for send in (chat, responses):
        answer = send(servers, url)
        assert answer.status_code == 400, (send.__name__, answer.text[:200])
        assert answer.json()["error"]["param"].startswith(("messages[0].content[0]", "input"))


@pytest.mark.parametrize("url", ["https://example.com/cat.png", PNG])
def test_public_https_and_data_urls_pass(servers: Servers, url: str) -> None:
    assert chat(servers, url).status_code == 200
    assert responses(servers, url).status_code == 200


def test_a_setting_allows_internal_hosts() -> None:
    servers = Servers(allow_private_image_urls=True)
    try:
        assert chat(servers, "https://10.1.2.3/x.png").status_code == 200
        assert chat(servers, "http://10.1.2.3/x.png").status_code == 400  # still https only
    finally:
        servers.close()
