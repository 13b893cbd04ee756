"""The rating app through Starlette's test client: access control, CSRF, escaping, going back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from human_helpers import need

try:
    from starlette.testclient import TestClient
except ImportError:  # skipped on a developer machine, a failure in CI
    need("the rating app's packages (pip install 'pytest-llmevals[human]')")

from pytest_llmeval.human.blindset import SourceCase, create_blind_set, write_blind_set  # noqa: E402
from pytest_llmeval.human.storage import RatingStore  # noqa: E402
from pytest_llmeval.human.webapp import CSP, create_app  # noqa: E402

CRITERIA = ("accuracy", "relevance", "format_compliance", "fluency")
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    cases = [SourceCase(f"c{i}", f"prompt {i} {HOSTILE if i == 0 else ''}", f"model {i} {HOSTILE}",
                        f"base {i}", f"ref {i}", None) for i in range(6)]
    blind, mapping, tokens = create_blind_set(cases, model="SECRET_MODEL_NAME", baseline="SECRET_BASE_NAME",
                                              raters=["alice", "bob", "carol"], per_item=2, seed=1)
    write_blind_set(tmp_path / "set", blind, mapping, tokens)
    app = create_app(tmp_path / "set", tmp_path / "ratings.db")
    return app, blind, tokens, tmp_path


def login(app, token: str) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, follow_redirects=False)
    r = client.get(f"/login/{token}")
    assert r.status_code == 303
    return client


def form_of(html: str, **overrides: str) -> dict[str, str]:
    data = {"csrf": re.search(r'name="csrf" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
            "item_id": re.search(r'name="item_id" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
            "preference": "A", "comment": ""}
    for side in "AB":
        for c in CRITERIA:
            data[f"{side}.{c}"] = "4"
    data.update(overrides)
    return data


def test_every_response_carries_a_strict_csp(setup) -> None:  # type: ignore[no-untyped-def]
    app, _, tokens, _ = setup
    client = login(app, tokens["alice"])
    for url in ("/", "/rate/alice/1", "/mapping", "/login/nope", "/static/annotate.js"):
        r = client.get(url)
        assert r.headers["content-security-policy"] == CSP, url
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP


def test_model_text_is_escaped(setup) -> None:  # type: ignore[no-untyped-def]
    app, blind, tokens, _ = setup
    client = login(app, tokens["alice"])
    html = client.get("/rate/alice/1").text + client.get("/rate/alice/2").text
    assert "<script>window" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "<script" not in html.replace('<script src="/static/annotate.js"></script>', "")


def test_unknown_token_is_404_and_leaks_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    app, blind, tokens, _ = setup
    client = TestClient(app, follow_redirects=False)
    for bad in ("nope", tokens["alice"][:-1], tokens["alice"] + "x", "../blind_set.json"):
        r = client.get(f"/login/{bad}")
        assert r.status_code == 404 and r.text == "Not found"
        assert "set-cookie" not in r.headers
    # A forged cookie opens nothing either.
    client.cookies.set("llmeval_rater", "forged")
    r = client.get("/rate/alice/1")
    assert r.status_code == 403 and "alice" not in r.text and "c0" not in r.text


def test_a_rater_cannot_open_another_raters_queue_ratings_or_the_mapping(setup) -> None:  # type: ignore[no-untyped-def]
    app, blind, tokens, _ = setup
    alice = login(app, tokens["alice"])
    bob = login(app, tokens["bob"])
    alice.post("/rate/alice/1", data=form_of(alice.get("/rate/alice/1").text, comment="alice's note"))
    for url in ("/rate/alice/1", "/rate/alice", "/rate/alice/ratings.json", "/rate/nobody/1"):
        r = bob.get(url)
        assert r.status_code == 403, url  # the same answer for a rater who does not exist
        assert "alice's note" not in r.text
    r = bob.post("/rate/alice/1", data=form_of(bob.get("/rate/bob/1").text))
    assert r.status_code == 403
    for client in (alice, bob, TestClient(app)):
        for url in ("/mapping", "/mapping.json"):
            r = client.get(url)
            assert r.status_code == 403 and "SECRET" not in r.text
    # Nothing a rater can fetch names the models or says which output is whose.
    pages = "".join(alice.get(f"/rate/alice/{i}").text for i in range(1, len(blind.queues["alice"]) + 1))
    assert "SECRET_MODEL_NAME" not in pages and "SECRET_BASE_NAME" not in pages
    assert '"a_is"' not in alice.get("/rate/alice/ratings.json").text
    for url in ("/static/../mapping.json", "/static/..%2f..%2fmapping.json", "/static/%2e%2e/blind_set.json"):
        r = alice.get(url)
        assert r.status_code in (403, 404) and "SECRET" not in r.text and "a_is" not in r.text


def test_post_without_the_csrf_token_is_refused_and_nothing_is_saved(setup) -> None:  # type: ignore[no-untyped-def]
    app, blind, tokens, tmp_path = setup
    client = login(app, tokens["alice"])
    data = form_of(client.get("/rate/alice/1").text)
    for bad in ({k: v for k, v in data.items() if k != "csrf"}, {**data, "csrf": "0" * 64},
                {**data, "csrf": form_of(login(app, tokens["bob"]).get("/rate/bob/1").text)["csrf"]}):
        r = client.post("/rate/alice/1", data=bad)
        assert r.status_code == 403 and "form token" in r.text
    assert RatingStore(tmp_path / "ratings.db", blind.set_id).all() == []


def test_going_back_and_changing_a_rating(setup) -> None:  # type: ignore[no-untyped-def]
    app, blind, tokens, tmp_path = setup
    client = login(app, tokens["carol"])
    first = client.get("/rate/carol/1").text
    r = client.post("/rate/carol/1", data=form_of(first, preference="A", comment="first"))
    assert r.status_code == 303 and r.headers["location"] == "/rate/carol/2"
    second = client.get("/rate/carol/2").text
    assert "1 of 4 rated" in second
    r = client.post("/rate/carol/2", data=form_of(second, preference="tie"))
    # Back to item 1: the saved rating is shown, then changed.
    page = client.get("/rate/carol/1").text
    assert 'value="A" checked' in page and ">first</textarea>" in page and "rated (you can change it)" in page
    r = client.post("/rate/carol/1", data=form_of(page, preference="B", comment="changed my mind",
                                                  **{"A.fluency": "1"}))
    assert r.status_code == 303
    store = RatingStore(tmp_path / "ratings.db", blind.set_id)
    got = store.get("carol", blind.queues["carol"][0])
    assert got is not None and got.preference == "B" and got.comment == "changed my mind"
    assert got.scores["A"]["fluency"] == 1 and got.revisions == 2
    assert len(store.all()) == 2


def test_incomplete_or_out_of_range_rating_is_refused_with_the_form_kept(setup) -> None:  # type: ignore[no-untyped-def]
    app, blind, tokens, tmp_path = setup
    client = login(app, tokens["alice"])
    html = client.get("/rate/alice/1").text
    data = form_of(html, comment="keep me")
    del data["B.fluency"]
    del data["preference"]
    r = client.post("/rate/alice/1", data=data)
    assert r.status_code == 400 and "fluency of B" in r.text and "the overall preference" in r.text
    assert ">keep me</textarea>" in r.text
    r = client.post("/rate/alice/1", data=form_of(html, **{"A.accuracy": "9"}))
    assert r.status_code == 400 and "from 1 to 5" in r.text
    r = client.post("/rate/alice/1", data=form_of(html, item_id="c5"))
    assert r.status_code == 409
    assert RatingStore(tmp_path / "ratings.db", blind.set_id).all() == []


def test_last_item_leads_to_the_done_page(setup) -> None:  # type: ignore[no-untyped-def]
    app, blind, tokens, _ = setup
    client = login(app, tokens["bob"])
    n = len(blind.queues["bob"])
    for i in range(1, n + 1):
        r = client.post(f"/rate/bob/{i}", data=form_of(client.get(f"/rate/bob/{i}").text))
    assert r.headers["location"] == "/rate/bob"
    assert f"All {n} items in your queue are rated" in client.get("/rate/bob").text
    assert client.get(f"/rate/bob/{n + 1}").status_code == 404
    # The login link now starts where work remains: at the first item when all are done.
    assert TestClient(app, follow_redirects=False).get(f"/login/{tokens['bob']}").headers["location"] == "/rate/bob/1"


def test_foreign_host_header_is_refused_when_hosts_are_pinned(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, tokens, tmp_path = setup
    app = create_app(tmp_path / "set", tmp_path / "ratings.db", allowed_hosts=["127.0.0.1", "localhost"])
    ok = TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False)
    assert ok.get(f"/login/{tokens['alice']}").status_code == 303
    rebound = TestClient(app, base_url="http://attacker.example:8765", follow_redirects=False)
    assert rebound.get(f"/login/{tokens['alice']}").status_code == 400
