"""The compliance list page of an org subtree: who is short, sortable, paged, narrowed to a
unit, and the same list as CSV for spreadsheets, in the page's language."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.policy.pack import DEFAULT_PACK, SHIPPED_PACKS, load_pack

from ..auth import Principal
from ..csv_cells import BOM, csv_text
from ..errors import ApiError
from ..i18n import pick_lang, translator
from ..security import PageReader, check_org_readable
from ..services import Services, ServicesDep
from .pages import org_names, period_choices, render

router = APIRouter(include_in_schema=False)


# Header cells of the compliance table, in order, one per data cell: key (None: not
# sortable) and the label's string name.
HEADERS: list[tuple[str | None, str]] = [
    ("learner_id", "learner"), ("name", "name"), ("org_id", "unit"), (None, "shortfalls"),
    ("total_shortfall", "total_shortfall"), ("promotion", "promotion")]
COLUMNS = {key for key, _ in HEADERS if key}


def _compliance_rows(services: Services, reader: Principal, org_id: str, policy: str,
                     period: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    check_org_readable(services, reader, org_id)
    report = services.views.compliance(org_id, policy, period).model_dump(mode="json")
    rows = []
    for row in report["short"]:
        total = sum((Decimal(s["shortfall"]) for s in row["shortfalls"]), Decimal(0))
        rows.append(row | {"total_shortfall": f"{total:.2f}"})
    return report, rows


COMPLIANCE_PAGE_SIZE = 50


def _subtree_orgs(services: Services, org_id: str) -> list[tuple[str, str, int]]:
    """(org_id, name, depth) of `org_id` and every unit below it, depth-first."""
    table = services.views.org_table()
    names = {o: name for o, name, _, _ in table}
    children: dict[str | None, list[str]] = {}
    for o, _, parent, _ in table:
        children.setdefault(parent, []).append(o)
    out: list[tuple[str, str, int]] = []

    def walk(org: str, depth: int) -> None:
        out.append((org, names.get(org, org), depth))
        for child in sorted(children.get(org, [])):
            walk(child, depth + 1)

    walk(org_id, 0)
    return out


@router.get("/orgs/{org_id}/compliance", response_class=HTMLResponse)
def compliance_page(request: Request, services: ServicesDep, reader: PageReader, org_id: str,
                    period: str, policy: str = DEFAULT_PACK, sort: str = "total_shortfall",
                    desc: bool = False, unit: str = "", page: int = 1) -> Response:
    check_org_readable(services, reader, org_id)
    units = _subtree_orgs(services, org_id)
    if unit and unit not in {o for o, _, _ in units}:
        raise ApiError(422, "invalid_request",
                       f"unit {unit} is not {org_id} or a unit below it")
    # A unit narrows the whole report (its count and rate too), not only the rows shown.
    report, rows = _compliance_rows(services, reader, unit or org_id, policy, period)
    sort = sort if sort in COLUMNS else "total_shortfall"

    def key(row: dict[str, Any]) -> Any:
        if sort == "total_shortfall":
            return Decimal(row[sort])
        if sort == "promotion":
            return (row["promotion"] or {}).get("status", "")
        return row[sort]

    rows.sort(key=key, reverse=desc)
    pages = max(1, -(-len(rows) // COMPLIANCE_PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = rows[(page - 1) * COMPLIANCE_PAGE_SIZE: page * COMPLIANCE_PAGE_SIZE]
    in_scope = int(report["learners_in_scope"])
    share = (Decimal(in_scope - len(rows)) * 100 / in_scope).quantize(Decimal("0.1")) \
        if in_scope else None
    params = {"policy": report["policy"]["id"], "period": report["period"], "unit": unit,
              "sort": sort, "desc": "1" if desc else "", "page": str(page),
              "lang": pick_lang(request.query_params.get("lang"))}

    def here(**changes: Any) -> str:
        """This list's URL with some parameters changed; empty ones left out."""
        merged = {k: v for k, v in (params | changes).items() if v not in ("", None)}
        return f"/orgs/{org_id}/compliance?{urlencode(merged)}"

    t = translator(pick_lang(request.query_params.get("lang")))
    names = org_names(services)
    return render(request, "compliance.html", report=report, rows=shown, short_count=len(rows),
                  sort=sort, policy_title=load_pack(report["policy"]["id"]).title,
                  descending=desc, org_id=org_id, org_name=names.get(org_id, org_id),
                  org_names=names, columns=[(k, t[v]) for k, v in HEADERS], here=here,
                  page=page, pages=pages, share=share, unit=unit, units=units,
                  policies=SHIPPED_PACKS,
                  periods=period_choices(load_pack(policy), services.clock().year))


CSV_HEADERS = ("learner", "name", "unit", "requirements", "year", "required_amount", "actual",
               "shortfall", "promotion")


@router.get("/orgs/{org_id}/compliance.csv")
def compliance_csv(request: Request, services: ServicesDep, reader: PageReader, org_id: str,
                   period: str, policy: str = DEFAULT_PACK) -> Response:
    """One line per shortfall, headed and worded in the page's language, with unit names."""
    report, rows = _compliance_rows(services, reader, org_id, policy, period)
    t = translator(pick_lang(request.query_params.get("lang")))
    names = org_names(services)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([t[h] for h in CSV_HEADERS])
    for row in rows:
        promotion = (row["promotion"] or {}).get("status", "")
        for s in row["shortfalls"]:
            # ids and names come from the writers' facts; the rest is the server's own
            writer.writerow([csv_text(row["learner_id"]), csv_text(row["name"]),
                             csv_text(names.get(row["org_id"], row["org_id"])),
                             t.get(s["name"], s["name"]), s.get("year") or "", s["required"],
                             s["actual"], s["shortfall"], t.get(promotion, promotion)])
    # Only plain characters in the header: ids are the writers' text.
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"compliance-{org_id}-{report['period']}.csv")
    # A byte-order mark, so that spreadsheet programs read the Chinese names as UTF-8.
    return Response(BOM + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
