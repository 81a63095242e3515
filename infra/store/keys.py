"""API keys, stored hashed beside the event store.

A key is 256 random bits, so a plain SHA-256 of it cannot be brute-forced and needs no slow
password hash; the clear key is shown once, at creation, and never stored. Lookups are cached
for a few seconds so a busy API does not query per request; revocation applies within that.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.access import ROLES, Principal, Role
from domain.errors import StoreUnavailableError
from infra.settings import Settings
from infra.store.sql_connection import SqlConnection

DDL = (
    "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL "
    "UNIQUE, role TEXT NOT NULL, org_id TEXT NOT NULL, source TEXT, created_at TEXT NOT NULL, "
    "revoked_at TEXT)"
)
CACHE_SECONDS = 5.0


class KeyStoreError(ValueError):
    """A key cannot be made or revoked as asked."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    role: str
    org_id: str
    source: str | None
    created_at: str
    revoked_at: str | None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, settings: Settings) -> None:
        self.db = SqlConnection(settings)
        self.timeout = settings.store_timeout_seconds
        self.db.create_tables([DDL])
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def create(self, role: str, org_id: str, source: str | None = None, *,
               basic: bool = False) -> str:
        """Store a new key and return its clear text (the only time it exists); with
        `basic`, as the `ID:SECRET` pair HTTP Basic clients (xAPI) send."""
        if role not in ROLES:
            raise KeyStoreError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        if role == "platform" and not source:
            raise KeyStoreError("a platform key needs --source: the source its facts carry")
        if role != "platform" and source:
            raise KeyStoreError("--source is for platform keys only")
        key_id = secrets.token_hex(4)
        secret = f"sl_{key_id}_{secrets.token_urlsafe(32)}"
        with self.db.transaction() as cur:
            cur.execute(self.db.sql("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)"),
                        (key_id, hash_key(secret), role, org_id, source,
                         datetime.now(UTC).isoformat(timespec="seconds")))
        return f"{key_id}:{secret}" if basic else secret

    def revoke(self, key_id: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(self.db.sql(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"),
                (datetime.now(UTC).isoformat(timespec="seconds"), key_id))
            if cur.rowcount != 1:
                raise KeyStoreError(f"no active key {key_id!r}")

    def list(self) -> list[KeyRecord]:
        return [KeyRecord(*row) for row in self.db.query(
            "SELECT key_id, role, org_id, source, created_at, revoked_at FROM api_keys "
            "ORDER BY created_at, key_id")]

    def cached_principal(self, secret: str) -> tuple[bool, Principal | None]:
        cached = self._cache.get(hash_key(secret))
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return True, cached[1]
        return False, None

    def principal_for(self, secret: str) -> Principal | None:
        known, principal = self.cached_principal(secret)
        if known:
            return principal
        digest = hash_key(secret)
        now = time.monotonic()
        # One connection, shared by the server's threads. While the store is down each of
        # them may wait the store timeout for it: beyond that, a request is refused with
        # StoreUnavailableError rather than kept waiting in the queue.
        if not self._lock.acquire(timeout=self.timeout):
            raise StoreUnavailableError("no answer from the key store within the timeout")
        try:
            rows = self.db.query(
                "SELECT key_id, role, org_id, source FROM api_keys "
                "WHERE key_hash = ? AND revoked_at IS NULL", (digest,))
        finally:
            self._lock.release()
        principal = None
        if rows:
            key_id, role, org_id, source = rows[0]
            found: Role = role
            principal = Principal(key_id=key_id, role=found, org_id=org_id, source=source)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, principal)
        return principal

    def close(self) -> None:
        self.db.close()
