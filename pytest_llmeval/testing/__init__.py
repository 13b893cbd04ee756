"""Helpers for testing your own evals: a loopback server that speaks the OpenAI and Anthropic APIs."""

from __future__ import annotations

from pytest_llmeval.testing.fake_server import FakeLLMServer, FakeRequest, Faults, echo_responder

__all__ = ["FakeLLMServer", "FakeRequest", "Faults", "echo_responder"]
