"""Structured logs: one JSON object per line. Shared by the gateway and every ChatService.

Log calls pass their fields as `extra={"fields": {...}}`. Nothing here adds
prompt text or API keys; callers log ids, sizes, statuses and timings only.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson


class JsonLineFormatter(logging.Formatter):
    """ts, level, logger, pid, event, then the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        line: dict[str, object] = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "event": record.getMessage(),
            **(fields if isinstance(fields, dict) else {}),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


LEVELS = ("debug", "info", "warning", "error")


def configure(level: str = "info") -> None:
    """JSON lines on stderr for every logger (uvicorn's included), from `level` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the gateway logs each request itself
