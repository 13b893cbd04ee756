"""The rating app: one page per item, served to raters who hold a token.

Starlette + Jinja2 (autoescaping every value, so model text is shown, never run) +
uvicorn; the ``human`` extra. Bound to 127.0.0.1 unless told otherwise.

Routes:

- ``GET /login/{token}``: a rater's link; sets an HttpOnly, SameSite=Strict cookie and
  redirects to their queue. An unknown token is a plain 404.
- ``GET/POST /rate/{rater}/{n}``: the n-th item of the rater's own queue (1-based). Every
  POST carries a per-rater CSRF token in a hidden field, checked server-side, and is
  committed to SQLite before the next page is sent. Another rater's queue is 403.
- ``GET /rate/{rater}/ratings.json``: the rater's own ratings (403 for anyone else).
- ``GET /mapping``: always 403. The app never loads the A/B mapping at all.

Every response carries a strict Content-Security-Policy (scripts and styles only from
this origin, no inline script), ``X-Frame-Options: DENY``, ``no-referrer`` and ``no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import MissingDependency
from pytest_llmeval.human.blindset import DB_FILE, PREFERENCES, BlindSet, blind_set_path, load_blind_set
from pytest_llmeval.human.storage import Rating, RatingStore, check_rating

COOKIE = "llmeval_rater"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_COMMENT = 5000
HERE = Path(__file__).parent


def csrf_token(token: str, rater: str) -> str:
    """The hidden form token of a rater: an HMAC keyed by their secret, so no one else can forge it."""
    return hmac.new(token.encode("utf-8"), f"llmeval-csrf:{rater}".encode(), hashlib.sha256).hexdigest()


def _import() -> Any:
    try:
        import jinja2
        import starlette  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(exc.name or "starlette", "human", "The rating app") from None
    return jinja2


def create_app(blind_dir: str | Path, db_path: str | Path | None = None,
               allowed_hosts: list[str] | None = None) -> Any:
    """The Starlette app for one blind set; ratings go to ``db_path`` (default ``ratings.db`` beside it).

    ``allowed_hosts`` (the ``Host`` headers accepted) defends a loopback server against DNS
    rebinding: a web page whose name suddenly resolves to 127.0.0.1 still sends its own host name.
    """
    jinja2 = _import()
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates

    blind_file = blind_set_path(blind_dir)
    blind: BlindSet = load_blind_set(blind_file)
    store = RatingStore(db_path if db_path is not None else blind_file.parent / DB_FILE, blind.set_id)
    items = blind.by_id
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    templates = Jinja2Templates(env=env)

    class SecurityHeaders:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def send_with_headers(message: Any) -> None:
                if message["type"] == "http.response.start":
                    headers = [(k, v) for k, v in message.get("headers", [])
                               if k.decode().lower() not in {h.lower() for h in SECURITY_HEADERS}]
                    headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, send_with_headers)

    def not_found() -> Response:
        return PlainTextResponse("Not found", status_code=404)

    def forbidden(why: str) -> Response:
        return PlainTextResponse(f"Forbidden: {why}", status_code=403)

    def current_rater(request: Request) -> tuple[str, str] | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        rater = blind.rater_for_token(token)
        return (rater, token) if rater else None

    def authorise(request: Request, rater: str) -> tuple[str, Response | None]:
        # The same 403 whether or not ``rater`` exists, so that rater names cannot be probed.
        who = current_rater(request)
        if who is None:
            return "", forbidden("open the personal link you were sent")
        if who[0] != rater:
            return "", forbidden("this is another rater's queue")
        return who[1], None

    def render_item(request: Request, rater: str, token: str, pos: int, error: str = "",
                    form: dict[str, Any] | None = None, status: int = 200) -> Response:
        queue = blind.queues[rater]
        item = items[queue[pos - 1]]
        mine = store.for_rater(rater)
        saved = mine.get(item.id)
        values: dict[str, Any] = form if form is not None else (
            {"scores": saved.scores, "preference": saved.preference, "comment": saved.comment}
            if saved else {"scores": {"A": {}, "B": {}}, "preference": "", "comment": ""})
        prompt = item.prompt
        prompt_is_chat = isinstance(prompt, list)
        return templates.TemplateResponse(request, "item.html", {
            "rater": rater, "pos": pos, "total": len(queue), "item": item, "rubric": blind.rubric,
            "prompt_is_chat": prompt_is_chat,
            "prompt": prompt if prompt_is_chat else str(prompt),
            "reference": item.reference, "values": values, "error": error, "saved": saved is not None,
            "done": [q in mine for q in queue], "n_done": sum(q in mine for q in queue),
            "csrf": csrf_token(token, rater), "preferences": PREFERENCES,
        }, status_code=status)

    async def index(request: Request) -> Response:
        return templates.TemplateResponse(request, "index.html", {})

    async def login(request: Request) -> Response:
        token = request.path_params["token"]
        rater = blind.rater_for_token(token)
        if rater is None:
            return not_found()
        queue = blind.queues[rater]
        mine = store.for_rater(rater)
        first_open = next((i for i, q in enumerate(queue, 1) if q not in mine), 1)
        resp = RedirectResponse(f"/rate/{rater}/{first_open}", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
        return resp

    def position(request: Request, rater: str) -> int | None:
        try:
            pos = int(request.path_params["pos"])
        except ValueError:
            return None
        return pos if 1 <= pos <= len(blind.queues[rater]) else None

    async def queue_start(request: Request) -> Response:
        rater = request.path_params["rater"]
        _, denied = authorise(request, rater)
        if denied:
            return denied
        mine = store.for_rater(rater)
        queue = blind.queues[rater]
        first_open = next((i for i, q in enumerate(queue, 1) if q not in mine), None)
        if first_open is None:
            return templates.TemplateResponse(request, "done.html", {"rater": rater, "total": len(queue)})
        return RedirectResponse(f"/rate/{rater}/{first_open}", status_code=303)

    async def rate_page(request: Request) -> Response:
        rater = request.path_params["rater"]
        token, denied = authorise(request, rater)
        if denied:
            return denied
        pos = position(request, rater)
        if pos is None:
            return not_found()
        return render_item(request, rater, token, pos)

    async def rate_submit(request: Request) -> Response:
        rater = request.path_params["rater"]
        token, denied = authorise(request, rater)
        if denied:
            return denied
        form = await request.form()
        sent = str(form.get("csrf") or "")
        if not hmac.compare_digest(sent, csrf_token(token, rater)):
            return forbidden("missing or invalid form token; reload the page and submit again")
        pos = position(request, rater)
        if pos is None:
            return not_found()
        item_id = blind.queues[rater][pos - 1]
        if str(form.get("item_id") or "") != item_id:
            return PlainTextResponse("Conflict: this form is for another item; reload the page",
                                     status_code=409)
        scores: dict[str, dict[str, Any]] = {"A": {}, "B": {}}
        missing: list[str] = []
        for side in ("A", "B"):
            for c in blind.rubric.criteria:
                raw = str(form.get(f"{side}.{c.name}") or "")
                if raw.isdigit():
                    scores[side][c.name] = int(raw)
                else:
                    missing.append(f"{c.name} of {side}")
        preference = str(form.get("preference") or "")
        if preference not in PREFERENCES:
            missing.append("the overall preference")
        comment = str(form.get("comment") or "")[:MAX_COMMENT]
        values = {"scores": scores, "preference": preference, "comment": comment}
        if missing:
            return render_item(request, rater, token, pos, error="Please rate: " + ", ".join(missing),
                               form=values, status=400)
        rating = Rating(rater, item_id, scores, preference, comment)
        problem = check_rating(rating, blind)
        if problem:
            return render_item(request, rater, token, pos, error=problem, form=values, status=400)
        store.save(rating)
        nav = str(form.get("go") or "next")
        target = pos - 1 if nav == "prev" else pos + 1
        if target < 1:
            target = 1
        if target > len(blind.queues[rater]):
            return RedirectResponse(f"/rate/{rater}", status_code=303)
        return RedirectResponse(f"/rate/{rater}/{target}", status_code=303)

    async def own_ratings(request: Request) -> Response:
        rater = request.path_params["rater"]
        _, denied = authorise(request, rater)
        if denied:
            return denied
        return JSONResponse([r.to_dict() for r in store.for_rater(rater).values()])

    async def mapping(request: Request) -> Response:
        return forbidden("the A/B mapping is never shown to raters")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def on_404(request: Request, exc: Exception) -> Response:
        return not_found()

    async def on_405(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Method not allowed", status_code=405)

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/login/{token}", login),
        Route("/mapping", mapping),
        Route("/mapping.json", mapping),
        Route("/rate/{rater}", queue_start),
        Route("/rate/{rater}/ratings.json", own_ratings),
        Route("/rate/{rater}/{pos}", rate_page, methods=["GET"]),
        Route("/rate/{rater}/{pos}", rate_submit, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={404: on_404, 405: on_405})
    app.state.blind = blind
    app.state.store = store
    return app


def serve(blind_dir: str | Path, db_path: str | Path | None = None, host: str = "127.0.0.1",
          port: int = 8765) -> None:
    """Run the app with uvicorn until interrupted (no access log: login URLs carry tokens)."""
    app = create_app(blind_dir, db_path, allowed_hosts=serving_hosts(host))
    try:
        import uvicorn
    except ImportError:
        raise MissingDependency("uvicorn", "human", "The rating app") from None
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")


def serving_hosts(host: str) -> list[str] | None:
    """The ``Host`` headers to accept when bound to ``host`` (None: any, for a wildcard bind)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    return sorted({host, "127.0.0.1", "localhost", "[::1]"})


def rater_links(blind_dir: str | Path, base_url: str) -> dict[str, str]:
    """Each rater's link from the operator's ``tokens.json`` (empty when the file is not there)."""
    from pytest_llmeval.human.blindset import TOKENS_FILE

    path = blind_set_path(blind_dir).parent / TOKENS_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {r: f"{base_url.rstrip('/')}/login/{t}" for r, t in data.get("tokens", {}).items()}
