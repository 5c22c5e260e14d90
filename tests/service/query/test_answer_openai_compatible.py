"""Answers from an OpenAI-compatible chat server (Ollama, vLLM, llama.cpp, OpenAI), over real
HTTP against the fake in `tests/fakes/openai_server.py`: plain and streamed, with the same
gate, packing, citation checks and usage accounting as GLM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from indexer.collections import create_collection
from indexer.errors import ProviderAuthError, RateLimited
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.providers.base import ChatMessage, ChatOptions
from indexer.providers.factory import EmbedderSpec
from indexer.providers.openai_chat import OpenAIChatModel
from indexer.settings import Settings
from service.query.answer_records import Answer, DeltaEvent
from service.query.engine import Engine
from service.query.records import AnswerRequest
from tests.fakes.openai_server import FakeOpenAI

DOCS = {
    "leave.md": "# Leave\n\nEmployees get fifteen days of paid leave a year. "
    "Leave is requested two weeks ahead.",
    "builds.md": "# Builds\n\nThe staging cluster is rebuilt every night at 02:00 UTC.",
}
QUESTION = "How many days of paid leave do employees get?"
MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "[1] Fifteen days. Paid.")]


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.reset()
    return fake_openai


@pytest.fixture
def kb(tmp_path: Path, fake: FakeOpenAI) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        chat_base_url=fake.base_url,
        chat_api_key=SecretStr("sk-test"),
        chat_model="qwen2.5:7b",
        chat_model_context_window=4096,
        answer_max_tokens=512,
    )

    async def load() -> None:
        engine = Engine(settings, build_models=False)
        index = Index(settings, writer=True)
        try:
            spec = EmbedderSpec("hashing", "hashing", 256)
            collection = create_collection(index, engine.embedders, "kb", spec)
            items = [SourceItem(n, n, data=t.encode()) for n, t in DOCS.items()]
            await Ingestor(index, collection, engine.embedders.for_collection(collection)).run(
                items
            )
        finally:
            index.close()
            await engine.aclose()

    asyncio.run(load())
    return settings


def _run(settings: Settings, request: AnswerRequest, stream: bool = False) -> Any:
    async def run() -> Any:
        engine = Engine(settings)
        try:
            if not stream:
                return await engine.answer(request)
            return [e async for e in engine.answer_events(request)]
        finally:
            await engine.aclose()

    return asyncio.run(run())


def _client(fake: FakeOpenAI, key: str | None = "sk-test") -> OpenAIChatModel:
    return OpenAIChatModel(fake.base_url, model="m", api_key=key, backoff_seconds=0.0)


def test_client_completes_and_streams_with_usage(fake: FakeOpenAI) -> None:
    async def run() -> tuple[Any, list[Any]]:
        chat = _client(fake)
        try:
            whole = await chat.complete(MESSAGES, ChatOptions(model="m", max_tokens=64))
            pieces = [d async for d in chat.stream(MESSAGES, ChatOptions(model="m"))]
        finally:
            await chat.aclose()
        return whole, pieces

    whole, pieces = asyncio.run(run())
    assert whole.content == "Fifteen days. [1]" and whole.finish_reason == "stop"
    assert whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
    assert "".join(p.content for p in pieces) == whole.content
    assert pieces[-1].finish_reason == "stop" and pieces[-1].usage == whole.usage
    sent = fake.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_client_estimates_usage_when_the_server_sends_none(fake: FakeOpenAI) -> None:
    fake.usage_in_stream = False

    async def run() -> list[Any]:
        chat = _client(fake)
        try:
            return [d async for d in chat.stream(MESSAGES, ChatOptions(model="m"))]
        finally:
            await chat.aclose()

    last = asyncio.run(run())[-1]
    assert last.usage is not None and last.usage.completion_tokens > 0


def test_client_maps_errors_and_retries_only_retryable_ones(fake: FakeOpenAI) -> None:
    async def complete(chat: OpenAIChatModel) -> Any:
        try:
            return await chat.complete(MESSAGES, ChatOptions(model="m"))
        finally:
            await chat.aclose()

    fake.fail_next = [503, 429]
    assert asyncio.run(complete(_client(fake))).content  # two retries, then an answer
    fake.fail_next = [429, 429, 429]
    with pytest.raises(RateLimited):
        asyncio.run(complete(_client(fake)))
    fake.reset()
    with pytest.raises(ProviderAuthError):
        asyncio.run(complete(_client(fake, key="sk-wrong")))
    assert fake.requests == [], "a refused key is not retried"


def test_answer_uses_the_openai_compatible_model(kb: Settings, fake: FakeOpenAI) -> None:
    answered: Answer = _run(kb, AnswerRequest(query=QUESTION, collection="kb"))
    assert answered.model == "qwen2.5:7b" and answered.grounded
    assert answered.answer.endswith("[1]")
    assert [c.chunk.source for c in answered.citations] == ["leave.md"]
    chat_usage = [u for u in answered.usage if u.model == "qwen2.5:7b"]
    assert len(chat_usage) == 1 and chat_usage[0].completion_tokens > 0
    prompt = fake.requests[-1]["messages"][-1]["content"]
    assert "fifteen days of paid leave" in prompt and prompt.startswith("Sources:")


def test_streamed_answer_renumbers_split_markers(kb: Settings, fake: FakeOpenAI) -> None:
    fake.answer_next = "Fifteen days [2][1]. Asked two weeks ahead [1]."
    events = _run(kb, AnswerRequest(query=QUESTION, collection="kb", top_k=2), stream=True)
    deltas = "".join(e.text for e in events if isinstance(e, DeltaEvent))
    done = events[-1]
    assert deltas == done.answer == "Fifteen days [1][2]. Asked two weeks ahead [2]."
    assert done.model == "qwen2.5:7b"


def test_off_topic_question_never_reaches_the_model(kb: Settings, fake: FakeOpenAI) -> None:
    answered: Answer = _run(kb, AnswerRequest(query="Who wrote Hamlet?", collection="kb"))
    assert not answered.grounded and fake.requests == []
    assert any(w.startswith("declined") for w in answered.warnings)


def test_zhipu_stays_the_default_when_its_key_is_set(kb: Settings) -> None:
    both = kb.model_copy(update={"zhipu_api_key": SecretStr("id.secret")})
    engine = Engine(both, build_models=True)
    try:
        assert type(engine.chat).__name__ == "ZhipuChatModel"
        assert engine.chat_model_name == both.zhipu_chat_model
    finally:
        asyncio.run(engine.aclose())


def test_sources_are_packed_into_the_models_window(kb: Settings) -> None:
    engine = Engine(kb, build_models=False)
    try:
        context = engine.answer_context
        assert context.chat_window == context.long_window == 4096
        assert context.context_tokens <= 4096 - 512 - 1024
    finally:
        asyncio.run(engine.aclose())
