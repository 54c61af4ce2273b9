"""The operator console: a small Starlette app mounted at /console on the ops port.

Read-only. Pages are rendered on the server (views.py); the one script and the style
sheet are served from this package (static/), and the Content-Security-Policy allows
nothing else: no inline script or style, no other origin, no framing. A request gets in
with a login session (cookie: HttpOnly, SameSite=Strict, path /console, holding a random
session id) or with `Authorization: Bearer <token>`; every POST carries a CSRF token.
Refusals are counted in `gateway_console_auth_failures_total` and logged without any
token; too many from one source are answered 429 (auth.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.commands.common import parse_when
from gateway.console import summary, views
from gateway.console.auth import ConsoleToken, FailureLimit, Session, Sessions, same_secret
from gateway.errors import LogError
from gateway.lifespan import Gateway
from gateway.ops.logs import get_logger
from gateway.trace.find import trace
from gateway.trace.source import open_source

logger = get_logger("gateway.console")

SESSION_COOKIE: Final = "gw_console_session"
LOGIN_COOKIE: Final = "gw_console_login"  # the login form's CSRF token
_STATIC: Final = {"console.css": "text/css", "console.js": "text/javascript"}
_SECURITY_HEADERS: Final = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_MAX_FORM_BYTES: Final = 4096
_LIST_DAYS: Final = 7
_LISTED: Final = 100


class SecurityHeaders:
    """Adds the console's security headers to every response it sends."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self._app(scope, receive, with_headers)


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the console's forms are two fields); anything else or
    anything larger reads as empty, which every check then refuses."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    return {name: values[0] for name, values in fields.items()}


class Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


Page = Callable[[Request, Session | None], Awaitable[Response]]


class Console:
    """The console's state (token, sessions, failures) and its endpoints."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.clock = gateway.clock
        self.token = ConsoleToken(gateway.settings, self.clock.monotonic)
        self.sessions = Sessions(gateway.settings.console_session_ttl_s, self.clock.monotonic)
        self.failures = FailureLimit()
        self._refusals = gateway.metrics.console_auth_failures
        self.replica = f"{gateway.settings.instance_id or 'this replica'} · {gateway.log.name} log"

    # --- who is asking --------------------------------------------------------------------
    def source(self, request: Request) -> str:
        peer = request.client.host if request.client else ""
        return self.gateway.verifier.client_address(peer, request.headers.get("x-forwarded-for"))

    def refuse(self, request: Request, reason: str, response: Response) -> Refused:
        self._refusals.labels(reason).inc()
        logger.warning("console request refused", reason=reason, source=self.source(request))
        return Refused(response)

    def limited(self, request: Request, json_answer: bool) -> None:
        wait = self.failures.retry_after(self.source(request), self.clock.monotonic())
        if wait is not None:
            headers = {"Retry-After": str(max(1, int(wait + 0.999)))}
            body = "too many failed attempts; try again later"
            answer: Response = (
                JSONResponse({"error": "rate_limited", "message": body}, 429, headers=headers)
                if json_answer
                else HTMLResponse(self.render("Log in", views.login(body, ""), None), 429, headers)
            )
            raise self.refuse(request, "rate_limited", answer)

    def failed(self, request: Request) -> None:
        self.failures.failed(self.source(request), self.clock.monotonic())

    def session(self, request: Request, json_answer: bool) -> Session | None:
        """The caller's session (None for a bearer token); Refused if neither is good."""
        header = request.headers.get("authorization", "")
        if header:
            self.limited(request, json_answer=True)
            scheme, _, candidate = header.partition(" ")
            if scheme.lower() == "bearer" and self.token.matches(candidate.strip()):
                return None
            self.failed(request)
            raise self.refuse(
                request,
                "wrong_token",
                JSONResponse({"error": "unauthorized", "message": "wrong console token"}, 401),
            )
        found = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if found is not None:
            return found
        if json_answer:
            raise Refused(
                JSONResponse({"error": "unauthorized", "message": "log in to the console"}, 401)
            )
        raise Refused(RedirectResponse(f"{views.PREFIX}/login", 303))

    def render(self, title: str, body: str, session: Session | None, entity: str = "") -> str:
        csrf = session.csrf if session is not None else None
        return views.page(title, body, csrf=csrf, replica=self.replica, entity=entity)

    def page(self, title: str, body: str, session: Session | None, entity: str = "") -> Response:
        # A bearer caller has no session: give it the navigation without a logout.
        shown = session if session is not None else Session("", "", 0)
        return HTMLResponse(self.render(title, body, shown, entity))

    def cookie_options(self, request: Request) -> dict[str, Any]:
        return {
            "path": views.PREFIX,
            "httponly": True,
            "samesite": "strict",
            "secure": request.url.scheme == "https",
        }

    # --- endpoints ------------------------------------------------------------------------
    def guarded(
        self, page: Page, json_answer: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await page(request, self.session(request, json_answer))
            except Refused as refused:
                return refused.response

        return endpoint

    def login_form(
        self, request: Request, message: str | None = None, status: int = 200
    ) -> Response:
        csrf = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        answer = HTMLResponse(self.render("Log in", views.login(message, csrf), None), status)
        answer.set_cookie(LOGIN_COOKIE, csrf, max_age=3600, **self.cookie_options(request))
        return answer

    async def show_login(self, request: Request) -> Response:
        return self.login_form(request)

    async def login(self, request: Request) -> Response:
        try:
            self.limited(request, json_answer=False)
            form = await _form(request)
            csrf, token = form.get("csrf", ""), form.get("token", "")
            if not same_secret(csrf, request.cookies.get(LOGIN_COOKIE, "")):
                self.failed(request)
                expired = self.login_form(request, "The form expired; try again.", 403)
                raise self.refuse(request, "csrf", expired)
            if not self.token.matches(token):
                self.failed(request)
                raise self.refuse(
                    request, "wrong_token", self.login_form(request, "Wrong token.", 401)
                )
        except Refused as refused:
            return refused.response
        session = self.sessions.open()
        logger.info("console login", source=self.source(request))
        answer = RedirectResponse(f"{views.PREFIX}/", 303)
        answer.set_cookie(
            SESSION_COOKIE,
            session.id,
            max_age=int(self.sessions.ttl_s),
            **self.cookie_options(request),
        )
        answer.delete_cookie(LOGIN_COOKIE, path=views.PREFIX)
        return answer

    async def logout(self, request: Request, session: Session | None) -> Response:
        form = await _form(request)
        if session is None or not same_secret(form.get("csrf", ""), session.csrf):
            raise self.refuse(request, "csrf", Response("forbidden", 403, media_type="text/plain"))
        self.sessions.close(session.id)
        answer = RedirectResponse(f"{views.PREFIX}/login", 303)
        answer.delete_cookie(SESSION_COOKIE, path=views.PREFIX)
        return answer

    async def overview(self, request: Request, session: Session | None) -> Response:
        counters = summary.counters(self.gateway.metrics)
        rows = summary.deliveries(self.gateway.recent)
        return self.page("Overview", views.overview(counters, rows), session)

    async def api_summary(self, request: Request, session: Session | None) -> Response:
        rows = summary.deliveries(self.gateway.recent)
        return JSONResponse(
            {
                "counters": summary.counters(self.gateway.metrics),
                "deliveries": rows,
            }
        )

    async def _trace(self, request: Request) -> dict[str, Any]:
        entity = request.query_params.get("entity", "").strip()[:200]
        if not entity:
            raise ValueError("give an order number, a return number or mfSkuId:place")
        since = request.query_params.get("since", "").strip()
        since_ms = int(parse_when(since).timestamp() * 1000) if since else None
        async with open_source(self.settings) as source:
            story = await trace(
                source,
                self.settings,
                entity,
                since_ms,
                with_state=request.query_params.get("state") == "1",
                sources=self.gateway.recent.sources(),
            )
        return story.to_json()

    async def trace_page(self, request: Request, session: Session | None) -> Response:
        entity = request.query_params.get("entity", "").strip()[:200]
        try:
            doc = await self._trace(request)
        except ValueError as exc:
            return self.page("Trace", f'<p class="error">{views.e(exc)}</p>', session, entity)
        except LogError as exc:
            body = f'<p class="error">The log cannot be read now: {views.e(exc)}</p>'
            return self.page("Trace", body, session, entity)
        return self.page(f"Trace of {entity}", views.trace_page(doc), session, entity)

    async def api_trace(self, request: Request, session: Session | None) -> Response:
        try:
            return JSONResponse(await self._trace(request))
        except ValueError as exc:
            return JSONResponse({"error": "bad_request", "message": str(exc)}, 400)
        except LogError as exc:
            return JSONResponse({"error": exc.code, "message": str(exc)}, 503)

    async def dead_letters(self, request: Request, session: Session | None) -> Response:
        title = "Dead letters and quarantine"
        since_ms = int((self.clock.now() - timedelta(days=_LIST_DAYS)).timestamp() * 1000)
        try:
            async with open_source(self.settings) as source:
                dlq = await source.newest(self.settings.topic_dlq, since_ms, _LISTED)
                held = await source.newest(self.settings.topic_quarantine, since_ms, _LISTED)
        except LogError as exc:
            body = f'<p class="error">The log cannot be read now: {views.e(exc)}</p>'
            return self.page(title, body, session)
        body = views.dead_letters(summary.dead_letter_rows(dlq), summary.quarantine_rows(held))
        return self.page(title, body, session)


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    media = _STATIC.get(name)
    if media is None:
        return Response("not found", 404, media_type="text/plain")
    content = resources.files("gateway.console").joinpath("static", name).read_bytes()
    return Response(content, media_type=media)


def console_app(gateway: Gateway) -> Starlette:
    """The console for `gateway`; mount it at /console on the ops app only."""
    console = Console(gateway)
    routes = [
        Route("/", console.guarded(console.overview)),
        Route("/login", console.show_login, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.guarded(console.logout), methods=["POST"]),
        Route("/trace", console.guarded(console.trace_page)),
        Route("/dead-letters", console.guarded(console.dead_letters)),
        Route("/api/summary", console.guarded(console.api_summary, json_answer=True)),
        Route("/api/trace", console.guarded(console.api_trace, json_answer=True)),
        Route("/static/{name}", _static),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(SecurityHeaders)
    return app
