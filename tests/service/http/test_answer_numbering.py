"""One citation numbering on every surface: streamed deltas, final text, citations, chat."""

from __future__ import annotations

import json
from typing import Any

import pytest

from indexer.settings import Settings
from service.query.citations import Renumbering, validate_citations
from tests.service.conftest import FakeClock, ScriptedChat, engine_client, parse_sse

QUESTION = "How do I back up the data directory?"
# Markers split across pieces, one naming a source that does not exist.
PIECES = ["Stop writers [", "2] before copying [1", "][9]. Vectors can be rebuilt [2]."]


@pytest.mark.parametrize(
    "pieces",
    [
        ["Alpha [3][7] beta [1, 3]."],
        ["Alpha [", "3][", "7] beta [1,", " 3]."],
        ["Alpha ", "[3]", "[7]", " beta [1", ", 3", "]", "."],
    ],
)
def test_renumbering_pieces_add_up_to_the_whole(pieces: list[str]) -> None:
    renumbering = Renumbering(source_count=3)
    shown = [renumbering.feed(p) for p in pieces] + [renumbering.flush()]
    whole, order = validate_citations("".join(pieces), 3)
    assert "".join(shown) == whole == "Alpha [1] beta [2][1]."
    assert renumbering.order == order == [3, 1]


def test_renumbering_never_shows_a_half_marker() -> None:
    renumbering = Renumbering(source_count=12)
    assert renumbering.feed("See [1") == "See"
    assert renumbering.feed("2] and [") == " [1] and"
    assert renumbering.feed("x]") == " [x]"


def _chat_stream(client: Any, **extra: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    body = {
        "model": "ragsearch:docs",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
        **extra,
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    return chunks, chunks[-1]


def test_chat_stream_deltas_final_text_and_citations_agree(
    seeded: Settings, clock: FakeClock
) -> None:
    with engine_client(seeded, clock, ScriptedChat(PIECES)) as client:
        chunks, last = _chat_stream(client)
        plain = client.post(
            "/v1/chat/completions",
            json={"model": "ragsearch:docs", "messages": [{"role": "user", "content": QUESTION}]},
        ).json()
        sse = client.post(
            "/v1/answer", json={"query": QUESTION, "collection": "docs", "stream": True}
        )
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    final = last["ragsearch"]["answer"]
    assert streamed == final == "Stop writers [1] before copying [2]. Vectors can be rebuilt [1]."
    assert plain["choices"][0]["message"]["content"] == final
    cited = [(c["n"], c["chunk_id"]) for c in last["citations"]]
    assert [n for n, _ in cited] == [1, 2]
    sources = {s["n"]: s["chunk_id"] for s in last["sources"]}
    assert cited == [(1, sources[2]), (2, sources[1])], "[1] is the first source cited"
    events = parse_sse(sse.text)
    deltas = "".join(d["text"] for name, d in events if name == "delta")
    done = next(d for name, d in events if name == "done")
    assert deltas == done["answer"] == final
    # Real usage: the answer model's own token counts, not zeros.
    assert last["usage"]["prompt_tokens"] == 100 and last["usage"]["completion_tokens"] == 10
    assert plain["usage"]["total_tokens"] == 110


def test_chat_sources_footer_is_opt_in(seeded: Settings, clock: FakeClock) -> None:
    with engine_client(seeded, clock, ScriptedChat(PIECES)) as client:
        body = {"model": "ragsearch:docs", "messages": [{"role": "user", "content": QUESTION}]}
        plain = client.post("/v1/chat/completions", json=body).json()
        footed = client.post("/v1/chat/completions", json={**body, "sources_footer": True}).json()
        chunks, _ = _chat_stream(client, sources_footer=True)
    assert "Sources:" not in plain["choices"][0]["message"]["content"]
    content = footed["choices"][0]["message"]["content"]
    answer, footer = content.split("\n\nSources:\n")
    assert answer == plain["choices"][0]["message"]["content"]
    assert footer.splitlines()[0].startswith("[1] ") and "guide.md" in footer
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert streamed == content


def test_extractive_chat_usage_is_estimated_not_zero(loaded: Any) -> None:
    body = {"model": "ragsearch:docs", "messages": [{"role": "user", "content": QUESTION}]}
    answered = loaded.post("/v1/chat/completions", json=body).json()
    assert answered["ragsearch"]["answer_model"] == "extractive"
    usage = answered["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
