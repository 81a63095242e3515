"""Issued certificates: the register a verifier's code is looked up in.

Kept apart from the view tables (like the relay's position): a certificate is a record of
what was issued, not a projection of the facts, so a views `replay` or layout upgrade must
never drop it. Each server thread gets its own connection.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from decimal import Decimal

from domain.credits.balance import PolicyRef
from infra.settings import Settings
from infra.store.sql_connection import SqlConnection
from projections.certificate import CertificateTotals, IssuedCertificate

DDL = [
    "CREATE TABLE IF NOT EXISTS certificates (code TEXT PRIMARY KEY, learner_id TEXT NOT NULL, "
    "period TEXT NOT NULL, policy_id TEXT NOT NULL, policy_version TEXT NOT NULL, "
    "digest TEXT NOT NULL, totals TEXT NOT NULL, issued_at TEXT NOT NULL, "
    "issued_by TEXT NOT NULL, issuer_org_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS certificates_learner ON certificates (learner_id, period)",
]
COLUMNS = ("code, learner_id, period, policy_id, policy_version, digest, totals, issued_at, "
           "issued_by, issuer_org_id")


class CertificateStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._db.create_tables(DDL)

    @property
    def _db(self) -> SqlConnection:
        db: SqlConnection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = SqlConnection(self.settings)
        return db

    def record(self, issued: IssuedCertificate) -> None:
        totals = json.dumps({k: str(v) for k, v in issued.totals.model_dump().items()})
        self._db.execute(f"INSERT INTO certificates ({COLUMNS}) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (issued.code, issued.learner_id, issued.period, issued.policy.id,
                          issued.policy.version, issued.digest, totals,
                          issued.issued_at.isoformat(), issued.issued_by, issued.issuer_org_id))

    def find(self, code: str) -> IssuedCertificate | None:
        rows = self._db.query(f"SELECT {COLUMNS} FROM certificates WHERE code = ?", (code,))
        if not rows:
            return None
        (code, learner_id, period, policy_id, version, digest, totals, issued_at, issued_by,
         issuer_org_id) = rows[0]
        return IssuedCertificate(
            code=code, learner_id=learner_id, period=period,
            policy=PolicyRef(id=policy_id, version=version), digest=digest,
            totals=CertificateTotals(**{k: Decimal(v) for k, v in json.loads(totals).items()}),
            issued_at=datetime.fromisoformat(issued_at), issued_by=issued_by,
            issuer_org_id=issuer_org_id)

    def close(self) -> None:
        db: SqlConnection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
