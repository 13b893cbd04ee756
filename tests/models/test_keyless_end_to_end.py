"""The README's keyless local-server recipe, run through the plugin and the real SDKs with no key set."""

from __future__ import annotations

import textwrap

# pytester runs pytest in this process and drops the modules a run imported; C extensions such as
# numpy cannot be loaded twice, so the libraries the plugin imports lazily are imported here once.
import numpy  # noqa: F401
import pydantic  # noqa: F401
import pytest
import scipy.stats  # noqa: F401

from pytest_llmeval.testing.fake_server import FakeLLMServer, FakeRequest

pytest.importorskip("openai")
pytest.importorskip("anthropic")


def sentiment(request: FakeRequest) -> str:
    return "positive" if "good" in request.prompt else "negative"


@pytest.mark.parametrize("spelling", ["false", '"none"'])
def test_api_key_env_false_runs_every_case_with_no_key_in_the_environment(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spelling: str) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with FakeLLMServer(responder=sentiment) as server:
        pytester.makefile(".toml", pyproject=textwrap.dedent(f"""
            [tool.pytest.ini_options]
            llmeval_cache = "off"

            [tool.llmeval.models]
            local = {{ ref = "openai:llama3", base_url = "{server.openai_base_url}", api_key_env = {spelling} }}
            claude_proxy = {{ ref = "anthropic:claude-local", base_url = "{server.anthropic_base_url}", api_key_env = {spelling} }}
        """))
        for name in ("local", "claude_proxy"):
            pytester.makefile(".eval.yaml", **{name: textwrap.dedent(f"""
                model: {name}
                prompt: "Review: {{text}}"
                cases:
                  - {{id: a, text: a good film, reference: positive}}
                  - {{id: b, text: a bad film, reference: negative}}
                metrics:
                  exact_match: {{min: 1.0}}
            """)})
        result = pytester.runpytest("-q")
        keys = {r.api_key for r in server.log}
        apis = sorted({r.api for r in server.log})
    result.assert_outcomes(passed=6)
    assert apis == ["anthropic", "openai"] and server.count == 4
    assert keys == {"no-key-needed"}
