"""The README's Python snippets run as written against the real gateway and stub."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.support import Servers

README = (Path(__file__).resolve().parent.parent.parent / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(servers: Servers, index: int) -> None:
    code = SNIPPETS[index]
    code = code.replace("http://127.0.0.1:8080/v1", servers.url + "/v1")
    code = code.replace("127.0.0.1:50051", f"127.0.0.1:{servers.stub.port}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})
    assert "Hello there" in out.getvalue()


def test_readme_has_the_snippets() -> None:
    assert len(SNIPPETS) >= 2
