"""Request-level checks as FastAPI dependencies: who is calling, and may they read this."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from domain.errors import LearnerNotRegisteredError, OrgNotRegisteredError

from .auth import READER_ROLES, Principal
from .errors import forbidden, unauthorized
from .services import Services, ServicesDep

# The pages' sign-in keeps the key in this cookie (HttpOnly, SameSite=Strict).
KEY_COOKIE = "studyledger_key"


async def principal_of(services: Services, secret: str) -> Principal | None:
    """The holder of a key, or None when it is unknown or revoked."""
    known, principal = services.keys.cached_principal(secret)
    if not known:
        # Asking the store may wait (up to the store timeout when it is down): in the thread
        # pool, so that it holds up this request only, not every request on the event loop.
        principal = await run_in_threadpool(services.keys.principal_for, secret)
    return principal


def page_secret(request: Request) -> str:
    """The key a page request carries: a Bearer header, else the sign-in cookie; "" if none."""
    header = request.headers.get("authorization", "")
    secret = header.partition(" ")[2].strip() if header.lower().startswith("bearer ") else ""
    return secret or request.cookies.get(KEY_COOKIE, "")


async def current_principal(request: Request, services: ServicesDep) -> Principal | None:
    """The key's holder; None for an anonymous caller. A bad key is refused, never ignored."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise unauthorized("the Authorization header must be 'Bearer <api key>'")
    principal = await principal_of(services, secret.strip())
    if principal is None:
        raise unauthorized("the API key is unknown or has been revoked")
    request.state.principal = principal  # for the access log and the read audit
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(current_principal)]


# Dependencies are coroutines on purpose: FastAPI runs plain-function dependencies in its
# thread pool, a thread hop per dependency per request (measured: ~25% of a balance read).
def _key_holder(principal: Principal | None) -> Principal:
    if principal is None:
        raise unauthorized("this endpoint needs an API key: 'Authorization: Bearer <key>'")
    return principal


async def require_principal(principal: MaybePrincipal) -> Principal:
    return _key_holder(principal)


async def require_reader(principal: MaybePrincipal) -> Principal:
    principal = _key_holder(principal)
    if principal.role not in READER_ROLES:
        raise forbidden(f"a {principal.role} key may not read learner records; "
                        "use an auditor or admin key")
    return principal


async def page_reader(request: Request, services: ServicesDep) -> Principal:
    """The reader of a page of personal records: the same key check as the API's, with the
    key also taken from the sign-in cookie, and errors that tell a person to sign in."""
    secret = page_secret(request)
    if not secret:
        raise unauthorized("this page shows personal records: sign in with an auditor or "
                           "admin API key")
    principal = await principal_of(services, secret)
    if principal is None:
        raise unauthorized("the API key is unknown or has been revoked; sign in again")
    request.state.principal = principal  # for the access log and the read audit
    if principal.role not in READER_ROLES:
        raise forbidden(f"a {principal.role} key may not read learner records")
    return principal


Caller = Annotated[Principal, Depends(require_principal)]
Reader = Annotated[Principal, Depends(require_reader)]
PageReader = Annotated[Principal, Depends(page_reader)]


def check_org_readable(services: Services, reader: Principal, org_id: str) -> None:
    if not services.views.org_exists(org_id):
        raise OrgNotRegisteredError(f"org {org_id} is not registered", field="org_id")
    if not services.views.in_subtree(org_id, reader.org_id):
        raise forbidden(f"org {org_id} is outside the subtree of {reader.org_id} "
                        f"that {reader.describe()} may read")


def check_learner_readable(services: Services, reader: Principal, learner_id: str,
                           org_id: str | None = None) -> None:
    """`org_id`: the learner's org when the caller has read it already."""
    org_id = org_id or services.views.learner_org(learner_id)
    if org_id is None:
        raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
    if not services.views.in_subtree(org_id, reader.org_id):
        raise forbidden(f"learner {learner_id} belongs to org {org_id}, outside the subtree "
                        f"of {reader.org_id} that {reader.describe()} may read")


def check_board_public(services: Services, org: str | None) -> str:
    """For callers without a reader key: the org's board must exist and be published."""
    if org is None:
        raise forbidden("public boards are per org: pass ?org=ORG_ID")
    if not services.views.org_exists(org):
        raise OrgNotRegisteredError(f"org {org} is not registered", field="org")
    if not services.views.board_is_public(org):
        raise forbidden(f"the board of org {org} is not published (boards ship off; an "
                        "org admin opts in)")
    return org
