"""``llmeval view``: a local web viewer of the runs in a folder of results files.

Starlette + Jinja2 (autoescaping every value: suite names, gate names and outputs come
from eval files and models, and are shown, never run) + uvicorn; the ``view`` extra.
Bound to 127.0.0.1 unless told otherwise, and only ``Host`` headers naming the bound
address are accepted (a web page whose name is rebound to 127.0.0.1 is refused).

Routes:

- ``GET /``: the last N runs (``?last=N``, default 20) with their verdict counts, the
  files that could not be read and why, a form to compare two runs, and each gate's
  value with its interval across the runs (server-side SVG, axes and all).
- ``GET /report/{file}``: a run's HTML report, generated on the fly by
  :func:`pytest_llmeval.report.html.render_html`.
- ``GET /compare?old=FILE&new=FILE``: the comparison of two runs
  (:func:`pytest_llmeval.compare.compare_runs`, as ``llmeval compare`` makes it);
  ``GET /compare/report?old=...&new=...``: the new run's HTML report with it.

Pages carry no script at all; a strict Content-Security-Policy says so. The HTML
report keeps its own policy (one hashed inline script) and is served sandboxed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llmeval import numbers
from pytest_llmeval.errors import LLMEvalError, MissingDependency
from pytest_llmeval.viewer.runs import VERDICTS, RunFile, RunFolder, chart, trends

HERE = Path(__file__).parent
DEFAULT_LAST = 20
MAX_LAST = 500
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'")
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'unsafe-inline'; "
              "form-action 'none'; base-uri 'none'; frame-ancestors 'none'; sandbox allow-scripts")
"""The report's own meta policy allows only its hashed script; both policies apply, so this adds the
sandbox (an opaque origin) without letting anything else run."""
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _import() -> Any:
    try:
        import jinja2
        import starlette  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(exc.name or "starlette", "view", "llmeval view") from None
    return jinja2


def create_app(folder: str | Path, *, last: int = DEFAULT_LAST,
               allowed_hosts: list[str] | None = None) -> Any:
    """The Starlette app over ``folder``'s results files (re-read as they change)."""
    jinja2 = _import()
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates

    runs = RunFolder(folder)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.globals.update(number=numbers.number, signed=numbers.signed, interval=numbers.interval,
                       p_value=numbers.p_value, estimate=numbers.estimate, BASE_MODEL=numbers.BASE_MODEL,
                       PREVIOUS_RUN=numbers.PREVIOUS_RUN, folder=str(runs.folder))
    templates = Jinja2Templates(env=env)

    class SecurityHeaders:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            report = scope.get("type") == "http" and str(scope.get("path", "")).startswith(
                ("/report/", "/compare/report"))
            extra = {**SECURITY_HEADERS, "Content-Security-Policy": REPORT_CSP if report else PAGE_CSP}

            async def send_with_headers(message: Any) -> None:
                if message["type"] == "http.response.start":
                    names = {h.lower() for h in extra}
                    headers = [(k, v) for k, v in message.get("headers", [])
                               if k.decode().lower() not in names]
                    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, send_with_headers)

    def problem(text: str, status: int) -> Response:
        return PlainTextResponse(text, status_code=status)

    def listing() -> list[RunFile] | Response:
        try:
            return runs.files()
        except LLMEvalError as exc:
            return problem(str(exc), 500)

    def count(request: Request) -> int:
        raw = request.query_params.get("last", "")
        return min(MAX_LAST, max(1, int(raw))) if raw.isdigit() else last

    async def index(request: Request) -> Response:
        files = listing()
        if isinstance(files, Response):
            return files
        n = count(request)
        readable = [f for f in files if f.run is not None]
        shown = readable[:n]
        charts = [(t, chart(t)) for t in trends(shown)]
        return templates.TemplateResponse(request, "index.html", {
            "runs": shown, "n_runs": len(readable), "last": n,
            "unreadable": [f for f in files if f.run is None], "verdicts": VERDICTS, "charts": charts,
            "choices": readable,
        })

    def pick(name: str | None, files: list[RunFile]) -> RunFile | None:
        return next((f for f in files if f.name == name and f.run is not None), None)

    async def report(request: Request) -> Response:
        files = listing()
        if isinstance(files, Response):
            return files
        rf = pick(request.path_params["name"], files)
        if rf is None or rf.run is None:
            return problem("No such run in this folder", 404)
        from pytest_llmeval.report.html import render_html

        return HTMLResponse(render_html(rf.run))

    def pair(request: Request) -> tuple[RunFile, RunFile, Any] | Response:
        files = listing()
        if isinstance(files, Response):
            return files
        old, new = pick(request.query_params.get("old"), files), pick(request.query_params.get("new"), files)
        if old is None or new is None:
            return problem("Choose two runs of this folder to compare (old=FILE&new=FILE)", 404)
        from pytest_llmeval.compare import compare_runs

        assert old.run is not None and new.run is not None
        try:
            return old, new, compare_runs(old.run, new.run)
        except LLMEvalError as exc:
            return problem(f"These runs cannot be compared: {exc}", 422)

    async def compare(request: Request) -> Response:
        found = pair(request)
        if isinstance(found, Response):
            return found
        old, new, comparison = found
        return templates.TemplateResponse(request, "compare.html", {
            "old": old, "new": new, "comparison": comparison,
            "text": comparison.format_text(max_cases=5, width=120),
        })

    async def compare_report(request: Request) -> Response:
        found = pair(request)
        if isinstance(found, Response):
            return found
        old, new, comparison = found
        from pytest_llmeval.report.html import render_html

        assert new.run is not None  # pair() only returns readable runs
        return HTMLResponse(render_html(new.run, comparison=comparison, baseline=old.run))

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)  # browsers ask for one; a 404 would be noise in their console

    async def on_404(request: Request, exc: Exception) -> Response:
        return problem("Not found", 404)

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/favicon.ico", favicon),
        Route("/report/{name:path}", report),
        Route("/compare", compare),
        Route("/compare/report", compare_report),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: on_404})
    app.state.runs = runs
    return app


def serving_hosts(host: str) -> list[str] | None:
    """The ``Host`` headers to accept when bound to ``host`` (None: any, for a wildcard bind)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    return sorted({host, "127.0.0.1", "localhost", "[::1]"})


def serve(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8766, last: int = DEFAULT_LAST) -> None:
    """Run the viewer with uvicorn until interrupted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LLMEvalError(f"{folder}: not a folder (give the folder that holds the results files)")
    app = create_app(folder, last=last, allowed_hosts=serving_hosts(host))
    try:
        import uvicorn
    except ImportError:
        raise MissingDependency("uvicorn", "view", "llmeval view") from None
    print(f"llmeval view: {folder} at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
