"""The gateway's ids (`req_…`, `resp_…`, `msg_…`): runinfra.ids, unique and unguessable."""

from __future__ import annotations

from runinfra.ids import new_id as new_id  # re-exported

__all__ = ["new_id"]
