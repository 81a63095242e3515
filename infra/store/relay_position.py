"""Where the outbound relay has got to in the notification log. Kept apart from the view
tables, so that a views `replay` never makes the relay resend everything."""

from __future__ import annotations

from infra.settings import Settings
from infra.store.sql_connection import SqlConnection

DDL = "CREATE TABLE IF NOT EXISTS relay_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"


class RelayPositionStore:
    def __init__(self, settings: Settings, name: str) -> None:
        self.db = SqlConnection(settings)
        self.name = name
        self.db.create_tables([DDL])

    def position(self) -> int:
        rows = self.db.query("SELECT position FROM relay_tracking WHERE name = ?", (self.name,))
        return int(rows[0][0]) if rows else 0

    def save(self, position: int) -> None:
        with self.db.transaction() as cur:
            cur.execute(self.db.sql(
                "INSERT INTO relay_tracking VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                "SET position = excluded.position"), (self.name, position))

    def close(self) -> None:
        self.db.close()
