"""The rating app in a real headless Chromium against the real server.

Three raters rate 20 items each through ``llmeval annotate serve`` (a subprocess on
127.0.0.1, a free port), using the keyboard shortcuts; the server is killed with SIGKILL
midway and restarted, and every acknowledged rating is still there. A rater cannot open
another's queue or the mapping; an output holding ``<script>`` is shown, not run.

Needs Debian's ``chromium`` at /usr/bin/chromium, the ``playwright`` package and the
``human`` extra: skipped on a developer machine without them, a failure in CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from human_helpers import need

from pytest_llmeval.human.blindset import (
    SourceCase,
    create_blind_set,
    load_blind_set,
    load_mapping,
    write_blind_set,
)
from pytest_llmeval.human.storage import RatingStore

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_suite" / "human"
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
RATERS = ("alice", "bob", "carol")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        need(f"{CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        need("playwright (pip install 'pytest-llmevals[html-test]')")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        need("the rating app's packages (pip install 'pytest-llmevals[human]')")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``llmeval annotate serve`` as a subprocess, started and killed like a real one."""

    def __init__(self, blind_dir: Path, port: int, log: Path) -> None:
        self.blind_dir, self.port, self.log = blind_dir, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest_llmeval.cli", "annotate", "serve", "--blind-set",
                 str(self.blind_dir), "--port", str(self.port)], stdout=fh, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the server did not start within 60 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _blind_set(dir_: Path) -> dict[str, str]:
    """20 items of the example blind set (real model outputs), one with a hostile output."""
    example = load_blind_set(EXAMPLE)
    mapping = load_mapping(EXAMPLE, example)
    cases = []
    for i, it in enumerate(example.items[:20]):
        model, base = (it.output_a, it.output_b) if mapping.a_is[it.id] == "model" else (it.output_b, it.output_a)
        if i == 1:
            model = f"{model} {HOSTILE}"
        cases.append(SourceCase(it.id, it.prompt, model, base, it.reference, it.category))
    blind, mapping, tokens = create_blind_set(cases, model="finetuned", baseline="base", raters=list(RATERS),
                                              per_item=3, seed=11)
    write_blind_set(dir_, blind, mapping, tokens)
    return tokens


def _planned(rater: str, pos: int) -> tuple[list[int], str]:
    """What ``rater`` enters at queue position ``pos``: eight scores (A then B) and a preference key."""
    k = RATERS.index(rater)
    a = 1 + (pos + k) % 5
    return [a] * 4 + [6 - a] * 4, "abt"[(pos + 2 * k) % 3]


def _rate(page: Any, base: str, rater: str, pos: int, pref_key: str | None = None) -> None:
    scores, key = _planned(rater, pos)
    for s in scores:
        page.keyboard.press(str(s))
    page.keyboard.press(pref_key or key)
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert page.url != f"{base}/rate/{rater}/{pos}"


def _screenshot(page: Any, tmp_path: Path) -> None:
    """The rating page as a rater first sees it: saved under tmp, to $LLMEVAL_ARTIFACTS, and with
    LLMEVAL_UPDATE_SCREENSHOTS=1 to example_suite/human/ for the README."""
    shot = tmp_path / "rating_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("LLMEVAL_UPDATE_SCREENSHOTS"):
        shutil.copy(shot, EXAMPLE / "rating_page.png")
    artifacts = os.environ.get("LLMEVAL_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "rating_page.png")


def test_three_raters_rate_through_a_killed_and_restarted_server(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blind_dir = tmp_path / "set"
    tokens = _blind_set(blind_dir)
    blind = load_blind_set(blind_dir)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(blind_dir, port, tmp_path / "server.log")
    server.start()
    contexts = {r: browser.new_context(viewport={"width": 1280, "height": 1100}) for r in RATERS}
    pages = {r: c.new_page() for r, c in contexts.items()}
    errors: list[str] = []
    for p in pages.values():
        p.on("pageerror", lambda e: errors.append(str(e)))
        # 403/404 responses this test asks for are logged as "Failed to load resource"; anything else
        # (a CSP violation, a script error) is a failure.
        p.on("console", lambda m: errors.append(m.text)
             if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    try:
        for r in RATERS:
            pages[r].goto(f"{base}/login/{tokens[r]}")
            assert pages[r].url == f"{base}/rate/{r}/1"
        _screenshot(pages["alice"], tmp_path)

        # First half: 10 items each, plus going back with "[" to change one rating.
        for pos in range(1, 11):
            for r in RATERS:
                _rate(pages[r], base, r, pos)
        alice = pages["alice"]
        alice.keyboard.press("[")
        alice.wait_for_url(f"{base}/rate/alice/10")
        scores, key = _planned("alice", 10)
        assert alice.locator(f'input[name="A.accuracy"][value="{scores[0]}"]').is_checked()
        assert alice.locator(f'input[name="preference"][value="{ {"a": "A", "b": "B", "t": "tie"}[key]}"]').is_checked()
        changed_key = "abt"[("abt".index(key) + 1) % 3]
        _rate(alice, base, "alice", 10, pref_key=changed_key)

        store = RatingStore(blind_dir / "ratings.db", blind.set_id)
        assert len(store.all()) == 30

        # Kill the server with no chance to clean up, and start it again.
        server.kill()
        assert len(RatingStore(blind_dir / "ratings.db", blind.set_id).all()) == 30
        server.start()

        # Access control while logged in: bob cannot open alice's queue, her ratings or the mapping.
        bob = pages["bob"]
        for url in (f"{base}/rate/alice/1", f"{base}/rate/alice/ratings.json", f"{base}/mapping"):
            resp = bob.goto(url)
            assert resp is not None and resp.status == 403, url
        resp = bob.goto(f"{base}/login/not-a-token")
        assert resp is not None and resp.status == 404 and bob.inner_text("body") == "Not found"

        # Second half, on the restarted server.
        for r in RATERS:
            pages[r].goto(f"{base}/rate/{r}")
            assert pages[r].url == f"{base}/rate/{r}/11"
        for pos in range(11, 21):
            for r in RATERS:
                _rate(pages[r], base, r, pos)
        for r in RATERS:
            assert pages[r].url == f"{base}/rate/{r}"
            assert "All 20 items in your queue are rated" in pages[r].inner_text("body")

        # Every rating is there, as entered (and alice's change kept).
        got = {(x.rater, x.item_id): x for x in RatingStore(blind_dir / "ratings.db", blind.set_id).all()}
        assert len(got) == 60
        for r in RATERS:
            for pos, item_id in enumerate(blind.queues[r], 1):
                scores, key = _planned(r, pos)
                if (r, pos) == ("alice", 10):
                    key = changed_key
                rating = got[(r, item_id)]
                assert [rating.scores["A"][c] for c in ("accuracy", "relevance", "format_compliance", "fluency")] \
                    + [rating.scores["B"][c] for c in ("accuracy", "relevance", "format_compliance", "fluency")] \
                    == scores
                assert rating.preference == {"a": "A", "b": "B", "t": "tie"}[key]
        assert got[("alice", blind.queues["alice"][9])].revisions == 2

        # The hostile output is shown as text and never runs.
        hostile = next(i for i, it in enumerate(blind.queues["carol"], 1)
                       if HOSTILE in blind.by_id[it].output_a + blind.by_id[it].output_b)
        carol = pages["carol"]
        carol.goto(f"{base}/rate/carol/{hostile}")
        assert HOSTILE in carol.inner_text("#output-a") + carol.inner_text("#output-b")
        assert carol.evaluate("window.__pwned") is None
        assert carol.locator("pre img").count() == 0

        assert errors == []
    finally:
        for c in contexts.values():
            c.close()
        server.stop()
