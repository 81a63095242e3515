"""Server-rendered pages: the public ranking board, the learner archive, the study-hour
certificate and its public verification, signing in. The compliance list is in
compliance_pages.py, the home page and search in home_pages.py.

Pages that show a person's record need an auditor or admin key, given once on /login and kept
in an HttpOnly cookie (or sent as a bearer header). Chinese by default, `?lang=en` for
English. No JavaScript is needed; the certificate prints cleanly to PDF from the browser.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from domain.credits.balance import BalanceAnswer, parse_period
from domain.org_tree import published_orgs
from domain.policy.pack import DEFAULT_PACK, SHIPPED_PACKS, PolicyPack, load_pack
from projections.certificate import CERTIFICATE_PACK, issued_today
from projections.ranking_board import mask_name

from .. import certificates
from ..errors import ApiError, unauthorized
from ..i18n import event_word, pick_lang, translate_message, translator
from ..security import (
    KEY_COOKIE,
    PageReader,
    check_board_public,
    check_learner_readable,
)
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


def issuing_day(at: datetime) -> date:
    """The day a certificate was issued, in the certificate pack's time zone."""
    return issued_today(at, load_pack(CERTIFICATE_PACK))


def org_names(services: Services) -> dict[str, str]:
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
    names = org_names(services)
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
                  org_name=org_names(services).get(org_id, org_id), balance=balance,
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
    names = org_names(services)
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
    names = org_names(services)
    return render(request, "verify.html", code=certificates.display_code(found.issued.code),
                  outcome=found.status, issued=found.issued, now=found.now,
                  masked_name=mask_name(found.name or ""),
                  issuer_name=names.get(found.issued.issuer_org_id,
                                        found.issued.issuer_org_id),
                  issued_on=issuing_day(found.issued.issued_at))


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
