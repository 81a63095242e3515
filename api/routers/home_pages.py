"""The way around the pages: a home page with the reader's compliance rate, learner search,
the board's cycle and policy picker, and signing out.

Chinese by default, `?lang=en` for English, like every page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.policy.pack import DEFAULT_PACK, SHIPPED_PACKS, PolicyPack, load_pack

from ..auth import READER_ROLES, Principal
from ..security import KEY_COOKIE, PageReader, page_secret
from ..services import Services, ServicesDep
from .pages import cycle_choices, render

router = APIRouter(include_in_schema=False)
SEARCH_LIMIT = 50


def default_cycle(services: Services, pack: PolicyPack) -> str:
    """The cycle running now; while nothing is recorded in it yet, the latest one that has
    credits, so that a reader's first page is not a list of zeros."""
    cycles = cycle_choices(pack, services.clock().year)
    stored = set(services.views.stored_periods(pack.id))
    return next((c for c in cycles if c in stored), cycles[0])


def signed_in_reader(request: Request, services: Services) -> Principal | None:
    """The reader of a valid key in the cookie or header, or None: never an error."""
    secret = page_secret(request)
    principal = services.keys.principal_for(secret) if secret else None
    if principal is None or principal.role not in READER_ROLES:
        return None
    request.state.principal = principal  # for the access log
    return principal


def compliance_rate(report: dict[str, Any]) -> tuple[int, int, Decimal | None]:
    """(meeting, in scope, share in percent or None when nobody is in scope)."""
    total = int(report["learners_in_scope"])
    meeting = total - len(report["short"])
    share = (Decimal(meeting) * 100 / total).quantize(Decimal("0.1")) if total else None
    return meeting, total, share


@router.get("/", response_class=HTMLResponse)
def home(request: Request, services: ServicesDep, policy: str = DEFAULT_PACK,
         period: str | None = None) -> Response:
    pack = load_pack(policy)
    cycle = period or default_cycle(services, pack)
    public = [o for o, _, _, published in services.views.org_table() if published]
    board_url = f"/boards/{pack.id}/{cycle}?" + urlencode(
        ({"org": public[0]} if public else {}) | {"lang": request.query_params.get("lang", "zh")})
    reader = signed_in_reader(request, services)
    values: dict[str, Any] = {
        "reader": reader, "policy": pack.id, "cycle": cycle, "board_url": board_url,
        "policies": SHIPPED_PACKS, "cycles": cycle_choices(pack, services.clock().year),
        "is_current": cycle == cycle_choices(pack, services.clock().year)[0]}
    if reader is not None:
        report = services.views.compliance(reader.org_id, pack.id, cycle).model_dump(
            mode="json")
        meeting, total, share = compliance_rate(report)
        names = {org_id: name for org_id, name, _, _ in services.views.org_table()}
        values |= {"meeting": meeting, "total": total, "share": share,
                   "org_name": names.get(reader.org_id, reader.org_id)}
    return render(request, "home.html", **values)


@router.get("/learners", response_class=HTMLResponse)
def search(request: Request, services: ServicesDep, reader: PageReader,
           q: str = "") -> Response:
    """Learners in the key's scope by id (exact) or name (any part of it)."""
    text = q.strip()[:40]
    found = services.views.find_learners(reader.org_id, text, SEARCH_LIMIT) if text else []
    names = {org_id: name for org_id, name, _, _ in services.views.org_table()}
    return render(request, "search.html", q=text, found=found, org_names=names,
                  limit=SEARCH_LIMIT)


@router.get("/boards", response_class=HTMLResponse)
def board_picker(request: Request, services: ServicesDep, policy: str = DEFAULT_PACK,
                 period: str = "", org: str = "") -> Response:
    """Where the board's cycle and policy picker (a plain GET form) lands."""
    pack = load_pack(policy)  # an unknown policy is refused here, not on the next page
    query = urlencode({"org": org, "lang": request.query_params.get("lang", "zh")})
    period = quote(period.strip() or default_cycle(services, pack), safe="")
    return RedirectResponse(f"/boards/{pack.id}/{period}?{query}", status_code=303)


@router.get("/logout")
def logout(request: Request) -> Response:
    lang = request.query_params.get("lang")
    response = RedirectResponse("/" + ("?lang=en" if lang == "en" else ""), status_code=303)
    response.delete_cookie(KEY_COOKIE, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response
