"""Server-rendered pages: the public ranking board, the learner archive, the study-hour
certificate and its public verification, the compliance list (with CSV).

Pages that show a person's record need an auditor or admin key, given once on /login and kept
in an HttpOnly cookie (or sent as a bearer header). Chinese by default, `?lang=en` for
English. No JavaScript is needed; the certificate prints cleanly to PDF from the browser.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from domain.credits.balance import BalanceAnswer, parse_period
from domain.policy.pack import DEFAULT_PACK, SHIPPED_PACKS, PolicyPack, load_pack
from projections.certificate import CERTIFICATE_PACK, issued_today
from projections.ranking_board import mask_name, published_orgs

from .. import certificates
from ..auth import READER_ROLES, Principal
from ..csv_cells import BOM, csv_text
from ..errors import ApiError, forbidden, unauthorized
from ..i18n import event_word, pick_lang, translate_message, translator
from ..security import check_board_public, check_learner_readable, check_org_readable
from ..services import Services, ServicesDep

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
# Every amount on a page with two places, as in the API's JSON ("6.00", never "6").
templates.env.filters["amount"] = lambda value: f"{Decimal(str(value)):.2f}"
# Times on pages are read by people in the packs' time zone, not in UTC (a session just
# after midnight in Beijing is on the next day, or the next year).
PAGE_ZONE = ZoneInfo(load_pack(DEFAULT_PACK).time_zone)


def local_time(value: Any) -> str:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    return at.astimezone(PAGE_ZONE).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local_time"] = local_time
KEY_COOKIE = "studyledger_key"
LangParam = Annotated[str | None, Query()]


def _context(request: Request, **values: Any) -> dict[str, Any]:
    lang = pick_lang(request.query_params.get("lang"))
    other = "en" if lang == "zh" else "zh"
    params = dict(request.query_params) | {"lang": other}
    return {"lang": lang, "t": translator(lang), "event_word": lambda k: event_word(k, lang),
            "switch_url": f"{request.url.path}?{urlencode(params)}",
            "signed_in": bool(request.cookies.get(KEY_COOKIE)), **values}


def render(request: Request, template: str, http_status: int = 200,
           **values: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, _context(request, **values),
                                      status_code=http_status)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    """The HTML face of the one error model, for page routes."""
    next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    lang = pick_lang(request.query_params.get("lang"))
    return render(request, "error.html", status, status=status,
                  message=translate_message(message, lang), next=next_url)


async def page_reader(request: Request, services: ServicesDep) -> Principal:
    header = request.headers.get("authorization", "")
    secret = header.partition(" ")[2].strip() if header.lower().startswith("bearer ") else ""
    secret = secret or request.cookies.get(KEY_COOKIE, "")
    if not secret:
        raise unauthorized("this page shows personal records: sign in with an auditor or "
                           "admin API key")
    principal = services.keys.principal_for(secret)
    if principal is None:
        raise unauthorized("the API key is unknown or has been revoked; sign in again")
    request.state.principal = principal  # for the access log and the read audit
    if principal.role not in READER_ROLES:
        raise forbidden(f"a {principal.role} key may not read learner records")
    return principal


PageReader = Annotated[Principal, Depends(page_reader)]


def issuing_day(at: datetime) -> date:
    """The day a certificate was issued, in the certificate pack's time zone."""
    return issued_today(at, load_pack(CERTIFICATE_PACK))


def _org_names(services: Services) -> dict[str, str]:
    return {org_id: name for org_id, name, _, _ in services.views.org_table()}


def _picker(services: Services, org: str) -> list[tuple[str, str, int]]:
    """(org_id, name, depth) of the published subtree around `org`, depth-first from its
    highest published ancestor."""
    table = services.views.org_table()
    public = published_orgs((org_id, parent, published)
                            for org_id, _, parent, published in table)
    parents = {org_id: parent for org_id, _, parent, _ in table}
    names = {org_id: name for org_id, name, _, _ in table}
    children: dict[str | None, list[str]] = {}
    for org_id, _, parent, _ in table:
        children.setdefault(parent, []).append(org_id)
    root = org
    while parents.get(root) in public:
        root = parents[root] or root
    out: list[tuple[str, str, int]] = []

    def walk(org_id: str, depth: int) -> None:
        if org_id in public:
            out.append((org_id, names[org_id], depth))
        for child in sorted(children.get(org_id, [])):
            walk(child, depth + 1)

    walk(root, 0)
    return out


def cycle_choices(pack: PolicyPack, this_year: int) -> list[str]:
    """Every cycle of the pack from its first up to the one running now, newest first."""
    first, _ = pack.cycle_of(this_year)
    starts = range(first, pack.first_cycle_start - 1, -pack.cycle_years)
    return [f"{start}-{start + pack.cycle_years - 1}" for start in starts]


def period_choices(pack: PolicyPack, this_year: int) -> list[str]:
    """The cycles, each followed by its years: what the compliance list can be asked for."""
    out = []
    for cycle in cycle_choices(pack, this_year):
        first, last = (int(part) for part in cycle.split("-"))
        out += [cycle, *(str(y) for y in range(min(last, this_year), first - 1, -1))]
    return out


def _requirement_line(policy: str, t: dict[str, str]) -> str:
    pack = load_pack(policy)
    parts = [f"{t.get(r.name, r.name)} ≥ {r.minimum}" for r in pack.requirements
             if r.per == "cycle"]
    return "; ".join(parts) or "—"


@router.get("/boards/{policy}/{period}", response_class=HTMLResponse)
def board_page(request: Request, services: ServicesDep, policy: str, period: str,
               org: str | None = None, cursor: str | None = None) -> Response:
    org = check_board_public(services, org)
    answer = services.views.board(policy, period, org=org, limit=50, cursor=cursor,
                                  anonymous=True)
    names = _org_names(services)
    t = translator(pick_lang(request.query_params.get("lang")))
    cycles = cycle_choices(load_pack(policy), services.clock().year)
    return render(request, "board.html", entries=answer.entries, next_cursor=answer.next_cursor,
                  cursor=cursor, org=org, org_name=names.get(org, org), org_names=names,
                  period=period, requirement_line=_requirement_line(policy, t),
                  subtree=_picker(services, org), policy=policy, policies=SHIPPED_PACKS,
                  cycles=cycles if period in cycles else [period, *cycles])


def _chart(years: list[tuple[int, BalanceAnswer]]) -> dict[str, Any]:
    totals = [(year, sum((Decimal(str(v)) for v in answer.totals.values()), Decimal(0)))
              for year, answer in years]
    top = max((max(v, Decimal(0)) for _, v in totals), default=Decimal(1)) or Decimal(1)
    bars = []
    for index, (year, value) in enumerate(totals):
        height = float(max(value, Decimal(0)) / top) * 100
        bars.append({"x": 10 + index * 60, "w": 40, "y": 120 - height, "h": height,
                     "year": year, "label": f"{value:.1f}"})
    return {"width": 20 + 60 * len(totals), "bars": bars}


def _percent(actual: Any, required: Any) -> float:
    required = Decimal(str(required))
    if required <= 0:
        return 100.0
    return float(min(Decimal(100), max(Decimal(0), Decimal(str(actual)) * 100 / required)))


def _balance(services: Services, learner_id: str, policy: str, period: str) -> BalanceAnswer:
    """The projected answer; computed from the store when the views have no row for it."""
    _, stored = services.views.learner_balance(learner_id, policy, period)
    if stored is not None:
        return BalanceAnswer.model_validate_json(stored)
    return services.ledger.balance(learner_id, policy, period)


@router.get("/learners/{learner_id}/archive", response_class=HTMLResponse)
def archive_page(request: Request, services: ServicesDep, reader: PageReader, learner_id: str,
                 policy: str = DEFAULT_PACK, period: str = "2021-2025",
                 cursor: str | None = None) -> Response:
    check_learner_readable(services, reader, learner_id)
    pack = load_pack(policy)
    balance = _balance(services, learner_id, policy, period)
    years = [(y, _balance(services, learner_id, policy, str(y)))
             for y in parse_period(pack, period).years]
    trail = services.views.history(learner_id, known_at=None, happened_by=None,
                                   limit=500, cursor=cursor)
    first_page = trail if cursor is None else services.views.history(
        learner_id, known_at=None, happened_by=None, limit=1, cursor=None)
    name = first_page.entries[0].envelope["payload"]["name"]  # version 1: the registration
    org_id = services.views.learner_org(learner_id) or ""
    return render(request, "archive.html", learner_id=learner_id, name=name,
                  policy_title=pack.title,
                  org_name=_org_names(services).get(org_id, org_id), balance=balance,
                  caps={k: c.cap for k, c in pack.categories.items() if c.cap is not None},
                  years=years, chart=_chart(years), trail=trail, percent=_percent)


@router.get("/learners/{learner_id}/certificate", response_class=HTMLResponse)
def certificate_page(request: Request, services: ServicesDep, reader: PageReader,
                     learner_id: str, period: str, code: str | None = None) -> Response:
    """Without a code, a preview with a button to issue; with one, the issued certificate."""
    check_learner_readable(services, reader, learner_id)
    cert = certificates.current(services, learner_id, period)
    issued = services.certificates.find(certificates.normalize_code(code)) if code else None
    if code and (issued is None or issued.learner_id != learner_id
                 or issued.period != cert.period):
        raise ApiError(404, "certificate_not_found",
                       f"no certificate {code} was issued to {learner_id} for {period}")
    names = _org_names(services)
    values: dict[str, Any] = {"cert": cert, "org_name": names.get(cert.org_id, cert.org_id)}
    if issued is not None:
        url = certificates.verify_url(services, issued.code)
        values |= {"issued": issued, "code": certificates.display_code(issued.code),
                   "issuer_name": names.get(issued.issuer_org_id, issued.issuer_org_id),
                   "issued_on": issuing_day(issued.issued_at), "verify_url": url,
                   "qr": certificates.qr_svg(url), "changed": issued.digest != cert.digest}
    return render(request, "certificate.html", **values)


@router.post("/learners/{learner_id}/certificate")
async def issue_certificate(request: Request, services: ServicesDep, reader: PageReader,
                            learner_id: str) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    period = (form.get("period") or [""])[0]
    lang = pick_lang((form.get("lang") or [""])[0])

    def issue() -> str:
        check_learner_readable(services, reader, learner_id)
        return certificates.issue(services, reader, learner_id, period)[1].code

    code = await run_in_threadpool(issue)
    query = urlencode({"period": period, "code": certificates.display_code(code), "lang": lang})
    return RedirectResponse(f"/learners/{learner_id}/certificate?{query}", status_code=303)


@router.get("/certificates/verify", response_class=HTMLResponse)
def verify_page(request: Request, services: ServicesDep, code: str | None = None) -> Response:
    """Public: was a certificate issued with this code, and does the record still give what
    it printed? An unknown code shows nothing of anyone."""
    if not code:
        return render(request, "verify.html", code=None, outcome=None)
    found = certificates.verify(services, code)
    if found.issued is None:
        return render(request, "verify.html", 404, code=code[:certificates.MAX_CODE_CHARS],
                      outcome="unknown")
    names = _org_names(services)
    return render(request, "verify.html", code=certificates.display_code(found.issued.code),
                  outcome=found.status, issued=found.issued, now=found.now,
                  masked_name=mask_name(found.name or ""),
                  issuer_name=names.get(found.issued.issuer_org_id,
                                        found.issued.issuer_org_id),
                  issued_on=issuing_day(found.issued.issued_at))


# Header cells of the compliance table, in order, one per data cell: key (None: not
# sortable) and the label's string name.
HEADERS: list[tuple[str | None, str]] = [
    ("learner_id", "learner"), ("name", "name"), ("org_id", "unit"), (None, "shortfalls"),
    ("total_shortfall", "total_shortfall"), ("promotion", "promotion")]
COLUMNS = {key for key, _ in HEADERS if key}


def _compliance_rows(services: Services, reader: Principal, org_id: str, policy: str,
                     period: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    check_org_readable(services, reader, org_id)
    report = services.views.compliance(org_id, policy, period)
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
    names = _org_names(services)
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
    names = _org_names(services)
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


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002 - the URL's name
    return render(request, "login.html", next=next)


@router.post("/login")
async def login(request: Request, services: ServicesDep) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = (form.get("next") or ["/"])[0]
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # never redirect off this site
    if services.keys.principal_for(key) is None:
        raise unauthorized("the API key is unknown or has been revoked")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response
