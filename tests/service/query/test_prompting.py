"""Which model an answer goes to, and why (`prompting.route`)."""

from __future__ import annotations

import pytest

from service.query.prompting import Route, route

WINDOWS = {"chat_model": "glm-4.6", "chat_window": 1000, "long_model": "glm-4-long"}


def routed(tokens: int, *, whole_documents: bool = False) -> Route | None:
    return route(
        tokens, answer_tokens=100, long_window=5000, whole_documents=whole_documents, **WINDOWS
    )


@pytest.mark.parametrize(
    ("tokens", "model"),
    [(900, "glm-4.6"), (901, "glm-4-long"), (4900, "glm-4-long"), (4901, None)],
)
def test_route_takes_the_chat_model_while_prompt_and_answer_fit(
    tokens: int, model: str | None
) -> None:
    chosen = routed(tokens)

    assert (chosen.model if chosen else None) == model


def test_route_says_why_it_chose_the_long_model() -> None:
    assert routed(2000) == Route("glm-4-long", "prompt of ~2,000 tokens exceeds glm-4.6's window")
    assert routed(10, whole_documents=True) == Route("glm-4-long", "whole-document mode")
    assert routed(4901, whole_documents=True) is None
