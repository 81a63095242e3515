"""The xAPI statements in `replay` and `export`: rebuild their query tables, write them out."""

from __future__ import annotations

import json
from typing import IO

from infra.bootstrap import build_lrs
from infra.settings import Settings


def replay_statements(settings: Settings) -> tuple[int, int]:
    """Rebuild the xAPI query tables from the statement log: (statements applied, position)."""
    lrs = build_lrs(settings)
    try:
        applied = lrs.replay()
        return applied, lrs.tables.position()
    finally:
        lrs.close()


def export_statements(settings: Settings, out: IO[str], from_position: int = 1) -> int:
    """Every stored statement, in log order, one JSON line each: the statement as the LRS
    returns it, with its org and log position. POSTing the statements to an LRS stores them
    again with the same ids. Returns how many were written."""
    lrs = build_lrs(settings)
    written = 0
    try:
        start = from_position
        while True:
            page = lrs.app.recorder.select_notifications(start=start, limit=1000)
            if not page:
                return written
            for notification in page:
                event = lrs.app.mapper.to_domain_event(notification)
                line = {"xapi_statement": json.loads(event.statement),  # type: ignore[attr-defined]
                        "org_id": event.org_id,  # type: ignore[attr-defined]
                        "position": notification.id}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                written += 1
            start = page[-1].id + 1
    finally:
        lrs.close()
