"""An org subtree's balances for one pack and period as a CSV for spreadsheets
(`studyledger export --balances`): one row per learner, read from the views."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import IO, Any

from api.csv_cells import BOM, csv_text
from domain.application import StudyLedger
from domain.credits.balance import BalanceAnswer, parse_period
from domain.policy.pack import load_pack
from infra.views.reports import subtree_learners
from infra.views.writer import ViewStore

BASE_COLUMNS = ["learner_id", "name", "org_id", "org_name", "policy", "policy_version",
                "period", "status"]
END_COLUMNS = ["promotion_year", "promotion_status", "prorated_from_year"]


@dataclass(frozen=True)
class BalancesReport:
    learners: int
    short: int
    views_position: int
    views_lag: int


def write_balances_csv(views: ViewStore, ledger: StudyLedger, out: IO[str], *, org: str,
                       policy: str, period: str) -> BalancesReport:
    """Every learner registered in the subtree by the period's end (as the compliance list
    counts them), with the balance answer the views hold for the period."""
    pack = load_pack(policy)
    parsed = parse_period(pack, period)
    members = [m for m in subtree_learners(views, org) if m[4] <= parsed.last]
    stored = {r[0]: r[1] for r in views.query(
        "SELECT learner_id, body FROM v_balances WHERE policy = ? AND period = ?",
        (policy, str(parsed)))}
    org_names = {r[0]: r[1] for r in views.query("SELECT org_id, name FROM v_orgs")}
    rows = []
    for learner_id, name, org_id, _, _ in members:
        if learner_id in stored:
            answer = BalanceAnswer.model_validate_json(stored[learner_id])
        else:  # no facts in the period: the answer of the registration alone
            answer = ledger.balance(learner_id, policy, str(parsed))
        # ids and names come from the writers' facts; the rest is the server's own
        texts = [learner_id, name, org_id, org_names.get(org_id, "")]
        rows.append(([csv_text(text) for text in texts], _cells(answer)))
    columns = _value_columns([cells for _, cells in rows])
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(BASE_COLUMNS + columns + END_COLUMNS)
    for texts, cells in rows:
        writer.writerow(texts + [cells.get(c, "") for c in [*BASE_COLUMNS[4:], *columns,
                                                               *END_COLUMNS]])
    position = views.position()
    return BalancesReport(
        learners=len(rows), short=sum(1 for _, c in rows if c["status"] == "short"),
        views_position=position,
        views_lag=(ledger.recorder.max_notification_id() or 0) - position)


def _cells(answer: BalanceAnswer) -> dict[str, str]:
    body: dict[str, Any] = answer.model_dump(mode="json")
    cells = {"policy": body["policy"]["id"], "policy_version": body["policy"]["version"],
             "period": body["period"], "status": body["status"]}
    for category, amounts in body["categories"].items():
        for kind in ("raw", "counted", "excess"):
            cells[f"{category}_{kind}"] = amounts[kind]
    for total, amount in body["totals"].items():
        cells[f"total_{total}"] = amount
    for requirement in body["requirements"]:
        # A cycle may hold one requirement per year; a pack may ask another of each rank.
        key = requirement["name"] + (f"_{requirement['year']}" if requirement["year"] else "")
        for kind in ("required", "actual", "shortfall"):
            cells[f"{key}_{kind}"] = requirement[kind]
    promotion, proration = body["promotion"], body["proration"]
    cells["promotion_year"] = str(promotion["year"]) if promotion else ""
    cells["promotion_status"] = promotion["status"] if promotion else ""
    cells["prorated_from_year"] = str(proration["from_year"]) if proration else ""
    return cells


def _value_columns(rows: list[dict[str, str]]) -> list[str]:
    """Category, total and requirement columns: every one any row has, in first-seen order
    (learners of different ranks may face different requirements)."""
    fixed = set(BASE_COLUMNS) | set(END_COLUMNS)
    seen: dict[str, None] = {}
    for cells in rows:
        seen.update((column, None) for column in cells if column not in fixed)
    return list(seen)
