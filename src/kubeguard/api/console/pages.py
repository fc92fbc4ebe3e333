"""The console's HTML routes under ``/console/``; every page is rendered on the server from :mod:`data`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context
from kubeguard.api.console import data, oidc, sessions
from kubeguard.api.console.entity_page import render_entity
from kubeguard.api.console.finding_pages import render_finding, render_list, render_suppress
from kubeguard.api.console.forms import Form, read_form
from kubeguard.api.console.html import Html, entity_href, finding_href, tag
from kubeguard.api.console.layout import not_found, page
from kubeguard.api.console.summary_page import render_search, render_summary
from kubeguard.findings.criteria import CriteriaError, matches, validate
from kubeguard.graph import kinds, queries
from kubeguard.store import filters as filter_store
from kubeguard.store import findings as finding_store
from kubeguard.store.database import now_ms

router = APIRouter()

#: No inline script or style, nothing from elsewhere, never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
FILTER_NAME = re.compile(r"[A-Za-z0-9._-]{3,64}")
MAX_FILTERS = 100
MESSAGES = {
    "archived": "Archived. New occurrences still update it; GetFindings shows it archived.",
    "unarchived": "Unarchived.",
    "feedback": "Feedback recorded.",
}


class Visit:
    """The browser's session for this request, and whether the response must set its cookie."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.open_access = context(request).open_access
        self.session, self.new = sessions.ensure(request, open_access=self.open_access)

    @property
    def allowed(self) -> bool:
        return self.open_access or bool(self.session.principal)

    def html(self, title: str, body: Any, status: int = 200) -> Response:
        document = page(
            title, body, principal=self.session.principal, csrf=self.session.csrf, open_access=self.open_access
        )
        return self.finish(HTMLResponse(document, status_code=status))

    def redirect(self, location: str) -> Response:
        return self.finish(RedirectResponse(location, status_code=303))

    def finish(self, response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if self.new:
            sessions.set_cookie(response, self.request, self.session)
        return response

    def login_redirect(self) -> Response:
        target = self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")
        return self.redirect("/console/login?" + urlencode({"next": target}))


def _read(request: Request, work: Any, *args: Any) -> Any:
    def run() -> Any:
        with context(request).engine.connect() as conn:
            return work(conn, *args)

    return run_in_threadpool(run)


def _bad_scope(visit: Visit, exc: Exception) -> Response:
    return visit.html(
        "Bad scope time", not_found("Bad scope time", f"{exc}. Use ISO 8601 UTC, e.g. 2026-11-30T00:00:00Z."), 400
    )


# -- sign-in -------------------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


def _login_form(visit: Visit, target: str, error: str = "") -> Html:
    return tag(
        "div",
        tag("h1", "Sign in to kubeguard"),
        tag("p", error, class_="flash error", role="alert") if error else "",
        tag(
            "form",
            tag("input", type="hidden", name="csrf", value=visit.session.csrf),
            tag("input", type="hidden", name="next", value=target),
            tag("label", "Access key ID ", tag("input", name="access_key", autocomplete="username", size="32")),
            tag("p", "Leave the access key ID empty to sign in with the console password.", class_="hint"),
            tag(
                "label",
                "Secret access key or console password ",
                tag("input", name="secret", type="password", autocomplete="current-password", required=True, size="32"),
            ),
            tag("button", "Sign in", type="submit", class_="primary"),
            method="post",
            action="/console/login",
            class_="login",
        ),
        _single_sign_on(visit, target),
        class_="login-box",
    )


def _single_sign_on(visit: Visit, target: str) -> Html | str:
    if visit.request.app.state.console_oidc is None:
        return ""
    return tag(
        "p",
        tag("a", "Sign in with single sign-on", href="/console/login/oidc?" + urlencode({"next": target}),
            class_="button sso"),
        class_="sso",
    )


@router.get("/console/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    visit = Visit(request)
    target = _safe_next(next)
    if visit.allowed:
        return visit.redirect(target)
    return visit.html("Sign in", _login_form(visit, target))


@router.post("/console/login")
async def login(request: Request) -> Response:
    visit = Visit(request)
    form = await read_form(request)
    target = _safe_next(form.get("next"))
    if not sessions.valid_form(request, sessions.current(request), form.get("csrf")):
        return visit.html("Sign in", _login_form(visit, target, "The form expired; please try again."), 403)
    address = request.client.host if request.client else ""
    store = sessions.store(request)
    if store.throttled(address):
        return visit.html("Sign in", _login_form(visit, target, "Too many failed attempts; wait a few minutes."), 429)
    options = context(request).options
    principal = sessions.check_credentials(
        options.access_keys,
        options.console_password,
        form.get("access_key").strip(),
        form.get("secret"),
    )
    if principal is None:
        store.failed(address)
        return visit.html("Sign in", _login_form(visit, target, "Those credentials are not valid."), 401)
    store.drop(visit.session.id)
    visit.session, visit.new = store.create(principal), True
    return visit.redirect(target)


@router.get("/console/login/oidc")
async def login_with_provider(request: Request, next: str | None = None) -> Response:
    """Step 1 of single sign-on: to the provider, with this browser's state in a cookie of its own."""
    visit = Visit(request)
    client = request.app.state.console_oidc
    target = _safe_next(next)
    if client is None:
        return visit.html("Sign in", not_found("Single sign-on is not configured", "Sign in below."), 404)
    if visit.allowed:
        return visit.redirect(target)
    try:
        state, location = await run_in_threadpool(client.begin, target, _callback_url(request))
    except oidc.OidcError as exc:
        return visit.html("Sign in", _login_form(visit, target, str(exc)), 502)
    response = visit.redirect(location)
    response.set_cookie(oidc.STATE_COOKIE, state, max_age=oidc.LOGIN_SECONDS, path=oidc.STATE_COOKIE_PATH,
                        secure=sessions.cookie_secure(request), httponly=True, samesite="lax")
    return response


@router.get("/console/oidc/callback")
async def provider_answer(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    """Step 2 of single sign-on: the provider's answer, taken once, turned into a signed-in session."""
    visit = Visit(request)
    client = request.app.state.console_oidc
    if client is None:
        return visit.html("Sign in", not_found("Single sign-on is not configured", "Sign in below."), 404)
    address = request.client.host if request.client else ""
    store = sessions.store(request)
    try:
        pending = client.take(state, request.cookies.get(oidc.STATE_COOKIE, ""))
        if error:
            raise oidc.OidcError(f"The identity provider refused the sign-in ({error[:64]}).")
        claims = await run_in_threadpool(client.finish, pending, code)
        if not client.config.allows(claims):
            store.failed(address)
            who = oidc.principal_of(claims).removeprefix("oidc:")
            raise oidc.OidcError(f"{who[:128]} may not sign in to this console.")
    except oidc.OidcError as exc:
        response = visit.html("Sign in", _login_form(visit, "/console/", str(exc)), 403)
        response.delete_cookie(oidc.STATE_COOKIE, path=oidc.STATE_COOKIE_PATH)
        return response
    store.drop(visit.session.id)
    visit.session, visit.new = store.create(oidc.principal_of(claims)), True
    # The provider's redirect is a cross-site navigation, on which browsers keep the session cookie
    # (SameSite=Strict) back: the next page is reached from this one, within the site. This page loads
    # nothing (no style, script or icon), so leaving it at once cuts no request short.
    document = "<!DOCTYPE html>" + tag(
        "html",
        tag("head", tag("meta", charset="utf-8"), tag("title", "Signed in · kubeguard"),
            tag("link", rel="icon", href="data:,"),
            tag("meta", **{"http-equiv": "refresh", "content": f"0;url={pending.target}"})),
        tag("body", tag("p", "Signed in as ", tag("strong", visit.session.principal or ""), ". ",
                        tag("a", "Continue", href=pending.target, id="continue"))),
        lang="en",
    )
    response = visit.finish(HTMLResponse(document))
    response.delete_cookie(oidc.STATE_COOKIE, path=oidc.STATE_COOKIE_PATH)
    return response


def _callback_url(request: Request) -> str:
    public = context(request).options.public_url.rstrip("/")
    base = public or str(request.base_url).rstrip("/")
    return f"{base}/console/oidc/callback"


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    visit = Visit(request)
    form = await read_form(request)
    if sessions.valid_form(request, sessions.current(request), form.get("csrf")):
        sessions.store(request).drop(visit.session.id)
    response = visit.redirect("/console/login")
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


# -- pages ---------------------------------------------------------------------------------------------------


@router.get("/console/")
async def summary_page(request: Request, start: str | None = None, end: str | None = None) -> Response:
    visit = Visit(request)
    if not visit.allowed:
        return visit.login_redirect()
    totals = await run_in_threadpool(context(request).spool.totals)
    try:
        view = await _read(request, data.summary, start, end, totals)
    except queries.ScopeError as exc:
        return _bad_scope(visit, exc)
    return visit.html("Summary", render_summary(view))


@router.get("/console")
async def console_root() -> Response:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/search")
async def search_page(request: Request, q: str = "") -> Response:
    visit = Visit(request)
    if not visit.allowed:
        return visit.login_redirect()
    results = await _read(request, queries.search, q[:256])
    return visit.html("Search", render_search(q[:256], results))


@router.get("/console/findings")
async def findings_page(request: Request, page: int = 1, sort: str = "updated") -> Response:
    visit = Visit(request)
    if not visit.allowed:
        return visit.login_redirect()
    filters = {
        name: str(request.query_params.get(name, "")).strip()[:256]
        for name in ("severity", "type", "cluster", "subject", "archived", "q")
    }
    filters["archived"] = filters["archived"] or "false"
    view = await _read(request, data.findings_list, filters, page, sort)
    return visit.html("Findings", render_list(view, filters, sort))


@router.get("/console/findings/{finding_id}")
async def finding_page(
    request: Request, finding_id: str, start: str | None = None, end: str | None = None, done: str = ""
) -> Response:
    visit = Visit(request)
    if not visit.allowed:
        return visit.login_redirect()

    def work(conn: Any) -> dict[str, Any] | None:
        found = queries.findings_by_id(conn, [finding_id])
        return data.finding_view(conn, found[0], start, end) if found else None

    try:
        view = await _read(request, work)
    except queries.ScopeError as exc:
        return _bad_scope(visit, exc)
    if view is None:
        return visit.html("No such finding", not_found("No such finding", f"There is no finding {finding_id}."), 404)
    message = MESSAGES.get(done, "")
    if done == "suppressed":
        message = "Suppression rule saved: it is listed by ListFilters and archives new findings like this one."
    return visit.html(view["finding"]["type"], render_finding(view, visit.session.csrf, message))


async def _checked_post(request: Request) -> tuple[Visit, Form] | Response:
    """The visit and its form when the browser is signed in and the form carries the session's token."""
    visit = Visit(request)
    if not visit.allowed:
        return visit.login_redirect()
    form = await read_form(request)
    if not sessions.valid_form(request, sessions.current(request), form.get("csrf")):
        refusal = not_found("Refused", "This form did not come from this console (CSRF check).")
        return visit.html("Refused", refusal, 403)
    return visit, form


async def _change(request: Request, finding_id: str, mutate: Any, done: str) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    visit, form = checked
    ctx = context(request)

    def work() -> bool:
        with ctx.engine.begin() as conn:
            found = queries.findings_by_id(conn, [finding_id])
            if not found:
                return False
            detector_id = (found[0].get("service") or {}).get("detectorId", "")
            finding_store.set_flag(conn, detector_id, [finding_id], lambda service: mutate(service, form))
            return True

    if not await run_in_threadpool(work):
        return visit.html("No such finding", not_found("No such finding", f"There is no finding {finding_id}."), 404)
    return visit.redirect(finding_href(finding_id, {"done": done}))


@router.post("/console/findings/{finding_id}/archive")
async def archive(request: Request, finding_id: str) -> Response:
    return await _change(request, finding_id, lambda service, _form: service.__setitem__("archived", True), "archived")


@router.post("/console/findings/{finding_id}/unarchive")
async def unarchive(request: Request, finding_id: str) -> Response:
    return await _change(
        request, finding_id, lambda service, _form: service.__setitem__("archived", False), "unarchived"
    )


def _feedback(service: dict[str, Any], form: Form) -> None:
    value = form.get("feedback")
    if value in ("USEFUL", "NOT_USEFUL"):
        service["userFeedback"] = value


@router.post("/console/findings/{finding_id}/feedback")
async def feedback(request: Request, finding_id: str) -> Response:
    return await _change(request, finding_id, _feedback, "feedback")


# -- suppression ---------------------------------------------------------------------------------------------


def _criterion(fields: dict[str, list[str]], chosen: set[str]) -> dict[str, dict[str, Any]]:
    return {field: {"eq": values} for field, values in fields.items() if field in chosen}


def _default_name(finding: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", "suppress-" + finding["type"].split("/")[-1])[:56] + "-" + finding["id"][:6]


@router.get("/console/findings/{finding_id}/suppress")
async def suppress_form(request: Request, finding_id: str) -> Response:
    visit = Visit(request)
    if not visit.allowed:
        return visit.login_redirect()
    chosen_param = request.query_params.getlist("field")

    def work(conn: Any) -> tuple[Any, ...] | None:
        found = queries.findings_by_id(conn, [finding_id])
        if not found:
            return None
        fields = data.suppression_criterion(found[0])
        chosen = (
            set(chosen_param)
            if chosen_param
            else {f for f in fields if f in ("type", data.USERNAME, "resource.eksClusterDetails.name")}
        )
        criterion = _criterion(fields, chosen)
        return found[0], fields, chosen, data.count_matching(conn, criterion) if criterion else 0

    result = await _read(request, work)
    if result is None:
        return visit.html("No such finding", not_found("No such finding", f"There is no finding {finding_id}."), 404)
    finding, fields, chosen, preview = result
    name = str(request.query_params.get("name") or _default_name(finding))[:64]
    return visit.html(
        "Suppress findings like this", render_suppress(finding, fields, chosen, preview, visit.session.csrf, name)
    )


@router.post("/console/findings/{finding_id}/suppress")
async def suppress(request: Request, finding_id: str) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    visit, form = checked
    chosen = set(form.getlist("field"))
    name = form.get("name").strip()
    archive_existing = form.get("archive_existing") == "1"
    ctx = context(request)

    def work() -> tuple[str, Any]:
        with ctx.engine.begin() as conn:
            found = queries.findings_by_id(conn, [finding_id])
            if not found:
                return "missing", None
            finding = found[0]
            fields = data.suppression_criterion(finding)
            criterion = _criterion(fields, chosen)
            error = _filter_error(conn, finding, name, criterion)
            if error:
                return "error", (finding, fields, error, data.count_matching(conn, criterion) if criterion else 0)
            detector_id = (finding.get("service") or {}).get("detectorId", "")
            count = filter_store.count(conn, detector_id)
            now = now_ms()
            filter_store.create(
                conn,
                filter_store.FilterRecord(
                    detector_id,
                    name,
                    f"Suppress findings like {finding['id']} (created in the console)",
                    "ARCHIVE",
                    min(count + 1, 100),
                    validate(criterion, allow_wildcards=True),
                    {},
                    1,
                    now,
                    now,
                ),
            )
            if archive_existing:
                ids = [f["id"] for f in finding_store.scan(conn, detector_id, criterion) if matches(criterion, f)]
                finding_store.set_flag(conn, detector_id, ids, lambda service: service.__setitem__("archived", True))
            return "saved", None

    outcome, detail = await run_in_threadpool(work)
    if outcome == "missing":
        return visit.html("No such finding", not_found("No such finding", f"There is no finding {finding_id}."), 404)
    if outcome == "error":
        finding, fields, error, preview = detail
        body = render_suppress(finding, fields, chosen, preview, visit.session.csrf, name[:64], error)
        return visit.html("Suppress findings like this", body, 400)
    return visit.redirect(finding_href(finding_id, {"done": "suppressed"}))


def _filter_error(conn: Any, finding: dict[str, Any], name: str, criterion: dict[str, Any]) -> str:
    if not criterion:
        return "Choose at least one field."
    if not FILTER_NAME.fullmatch(name):
        return "The name must be 3-64 letters, digits, '.', '_' or '-'."
    detector_id = (finding.get("service") or {}).get("detectorId", "")
    if filter_store.get(conn, detector_id, name) is not None:
        return f"A filter named {name} already exists."
    if filter_store.count(conn, detector_id) >= MAX_FILTERS:
        return f"A detector may have at most {MAX_FILTERS} filters."
    try:
        validate(criterion, allow_wildcards=True)
    except CriteriaError as exc:
        return str(exc)
    return ""


# -- entities ------------------------------------------------------------------------------------------------


@router.get("/console/entities/{kind}/{key:path}")
async def entity_page(
    request: Request, kind: str, key: str, start: str | None = None, end: str | None = None
) -> Response:
    visit = Visit(request)
    if not visit.allowed:
        return visit.login_redirect()
    if kind not in kinds.ENTITY_KINDS:
        return visit.html("Unknown kind", not_found("Unknown kind", f"There is no entity kind {kind}."), 404)

    def work(conn: Any) -> tuple[Any, Any]:
        view = data.entity_view(conn, kind, key, start, end)
        if view is None:
            # A pod link that names a workload (GuardDuty names a DaemonSet by its own name) goes there.
            return None, queries.workload_for_pod_link(conn, key) if kind == kinds.POD else None
        keys = [
            edge[end_name]["key"]
            for relation in view["relations"]
            for edge in relation["edges"]
            for end_name in ("source", "target")
            if edge[end_name]["kind"] in (kinds.POD, kinds.WORKLOAD)
        ]
        attributes = data.entity_attributes(conn, kinds.POD, keys)
        attributes.update(data.entity_attributes(conn, kinds.WORKLOAD, keys))
        return view, attributes

    try:
        view, found = await _read(request, work)
    except queries.ScopeError as exc:
        return _bad_scope(visit, exc)
    if view is None and found:
        query = f"?{request.url.query}" if request.url.query else ""
        return visit.redirect(entity_href(kinds.WORKLOAD, found) + query)
    if view is None:
        message = f"kubeguard has recorded no activity of {kind} {key!r}. It may be older than the retention time."
        return visit.html("Not found", not_found("Not in the activity store", message), 404)
    return visit.html(f"{key} ({kind})", render_entity(view, found))
