"""The OpenAI-compatible API, driven by the real `openai` client, and follow-up rewriting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from indexer.errors import ProviderUnavailable
from indexer.index import Index
from indexer.providers.base import ChatDelta, ChatMessage, ChatOptions, ChatResult
from indexer.records import Usage
from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import create_key
from service.query.followup import heuristic_rewrite, is_followup, standalone_query
from tests.service.chatbots import build_corpus, source_names

QUESTION = "How often are logs rotated?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openai") / "data")
    build_corpus(settings)
    return settings


@pytest.fixture(scope="module")
def api_key(corpus: Settings) -> str:
    """A read key on every collection (OpenAI clients always send a key; an unknown one is 401)."""
    index = Index(corpus, writer=True)
    try:
        secret, _ = create_key(index.catalog, "chatbot", ["read"])
    finally:
        index.close()
    return secret


@pytest.fixture
def client(corpus: Settings, api_key: str) -> Iterator[TestClient]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with TestClient(create_app(corpus), headers=headers) as test_client:
        yield test_client


@pytest.fixture
def oai(client: TestClient, api_key: str) -> openai.OpenAI:
    """The real OpenAI client, talking to the app in-process through the TestClient."""
    return openai.OpenAI(base_url=f"{client.base_url}/v1", api_key=api_key, http_client=client)


def _ask(oai: openai.OpenAI, *turns: str, **extra: Any) -> Any:
    roles = ["user", "assistant"]
    messages: list[Any] = [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]
    return oai.chat.completions.create(
        model=extra.pop("model", "ragsearch:docs"), messages=messages, **extra
    )


# --- models ------------------------------------------------------------------------------


def test_models_lists_the_default_and_one_per_collection(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert ids == ["ragsearch", "ragsearch:docs", "ragsearch:other"]
    assert oai.models.retrieve("ragsearch:docs").owned_by == "ragsearch"


def test_plain_ragsearch_needs_a_collection_when_several_exist(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="ambiguous"):
        _ask(oai, QUESTION, model="ragsearch")
    answered = _ask(oai, QUESTION, model="ragsearch", extra_body={"collection": "docs"})
    assert "rotated" in answered.choices[0].message.content


def test_unknown_models_and_collections_are_404(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as gpt:
        _ask(oai, QUESTION, model="gpt-4o")
    assert gpt.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        _ask(oai, QUESTION, model="ragsearch:nope")


# --- completions -----------------------------------------------------------------------------


def test_chat_completion_is_the_final_answer_with_citations(
    oai: openai.OpenAI, client: TestClient
) -> None:
    answered = _ask(oai, QUESTION, temperature=0.2, max_tokens=300, user="u-1")
    plain = client.post("/v1/answer", json={"query": QUESTION, "collection": "docs"}).json()
    assert answered.object == "chat.completion"
    assert answered.choices[0].finish_reason == "stop"
    assert answered.choices[0].message.content == plain["answer"]
    assert "[1]" in plain["answer"]
    extra = answered.model_extra or {}
    assert extra["citations"] == plain["citations"]
    assert source_names(extra["citations"])[0] == "logs.md"
    assert extra["ragsearch"]["answer_model"] == "extractive"
    assert answered.usage is not None and answered.usage.total_tokens >= 0


def test_streamed_chat_sends_deltas_then_citations_and_usage(oai: openai.OpenAI) -> None:
    chunks = list(_ask(oai, QUESTION, stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert last.usage is not None
    extra = last.model_extra or {}
    assert extra["ragsearch"]["answer"] == text == _ask(oai, QUESTION).choices[0].message.content
    assert source_names(extra["citations"])[0] == "logs.md"


def test_stream_ends_with_done(client: TestClient) -> None:
    body = {
        "model": "ragsearch:docs",
        "stream": True,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"


# --- follow-ups ------------------------------------------------------------------------------


def test_follow_up_retrieves_with_the_previous_turn(oai: openai.OpenAI) -> None:
    alone = _ask(oai, "How long are they kept?")
    assert source_names(alone.model_extra["citations"])[0] == "backups.md"  # type: ignore[index]
    first = _ask(oai, QUESTION)
    follow = _ask(oai, QUESTION, first.choices[0].message.content, "How long are they kept?")
    extra = follow.model_extra or {}
    assert extra["ragsearch"]["rewrite"] == "heuristic"
    assert source_names(extra["citations"])[0] == "logs.md"
    assert "7 days" in follow.choices[0].message.content


def test_chinese_follow_up_retrieves_with_the_previous_turn(oai: openai.OpenAI) -> None:
    alone = _ask(oai, "那它们保留多久呢？")
    assert source_names(alone.model_extra["sources"])[0] == "备份.md"  # type: ignore[index]
    follow = _ask(
        oai,
        "日志每天什么时候轮转？",
        "日志每天午夜轮转一次。[1]",
        "那它们保留多久呢？",
        stream=True,
    )
    chunks = list(follow)
    extra = chunks[-1].model_extra or {}
    assert source_names(extra["citations"])[0] == "日志.md"
    assert "七天" in extra["ragsearch"]["answer"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How long are they kept?", True),
        ("and in the Chinese docs?", True),
        ("What about backups?", True),
        ("Compressed?", True),
        ("How often are logs rotated at night?", False),
        ("那它们保留多久呢？", True),
        ("它怎么配置", True),
        ("日志每天什么时候轮转？", False),
    ],
)
def test_is_followup_spots_short_and_anaphoric_questions(question: str, expected: bool) -> None:
    assert is_followup(question) is expected


def test_heuristic_rewrite_keeps_standalone_questions_and_chains_follow_ups() -> None:
    assert (
        heuristic_rewrite("How are backups encrypted?", [QUESTION]) == "How are backups encrypted?"
    )
    chained = heuristic_rewrite("and compressed?", [QUESTION, "How long are they kept?"])
    assert chained.startswith("and compressed?")
    assert "logs rotated" in chained and "kept" in chained


class ScriptedChat:
    """A ChatModel that replies with a fixed text (or fails), recording what it was asked."""

    def __init__(self, reply: str | None) -> None:
        self.reply = reply
        self.asked: list[tuple[list[ChatMessage], ChatOptions]] = []

    async def complete(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        self.asked.append((list(messages), options))
        if self.reply is None:
            raise ProviderUnavailable("the chat model is down")
        return ChatResult(self.reply, options.model, "stop", Usage(options.model, 30, 6))

    async def stream(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[ChatDelta]:
        raise NotImplementedError
        yield ChatDelta()

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_standalone_query_asks_the_chat_model_deterministically() -> None:
    chat = ScriptedChat('Query: "How long are rotated logs kept?"\n')
    history = [("user", QUESTION), ("assistant", "Every night [1].")]
    rewrite = await standalone_query("How long are they kept?", history, chat, "glm-4.6")
    assert (rewrite.query, rewrite.method) == ("How long are rotated logs kept?", "model")
    assert rewrite.usage is not None and rewrite.usage.prompt_tokens == 30
    messages, options = chat.asked[0]
    assert options.temperature == 0.0 and options.model == "glm-4.6"
    assert QUESTION in messages[-1].content


@pytest.mark.anyio
async def test_standalone_query_falls_back_to_the_heuristic_when_the_model_fails() -> None:
    history = [("user", QUESTION)]
    rewrite = await standalone_query("How long are they kept?", history, ScriptedChat(None), "m")
    assert rewrite.method == "heuristic" and "logs rotated" in rewrite.query
    # The provider's own message stays in the server log; callers read a generic reason.
    assert rewrite.warning is not None and "model provider is unavailable" in rewrite.warning
    assert "chat model is down" not in rewrite.warning
    first = await standalone_query(QUESTION, [], ScriptedChat("ignored"), "m")
    assert (first.query, first.method) == (QUESTION, "none")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "ragsearch:docs", "messages": []}, 400, "messages"),
        ({"model": "ragsearch:docs"}, 400, "messages"),
        (
            {"model": "ragsearch:docs", "messages": [{"role": "system", "content": "hi"}]},
            400,
            "user",
        ),
        (
            {"model": "ragsearch:docs", "messages": [{"role": "user", "content": "  "}]},
            400,
            "empty",
        ),
        (
            {"model": "ragsearch:docs", "messages": [{"role": "wizard", "content": "x"}]},
            400,
            "role",
        ),
        (
            {"model": "ragsearch:docs", "messages": [{"role": "user", "content": "x"}], "top_k": 0},
            400,
            "top_k",
        ),
        (
            {"model": "ragsearch:docs", "messages": [{"role": "user", "content": "x"}], "n": 2},
            400,
            "n",
        ),
        (
            {
                "model": "ragsearch:docs",
                "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
            },
            400,
            "text",
        ),
        (
            {
                "model": "ragsearch:docs",
                "collection": "other",
                "messages": [{"role": "user", "content": "x"}],
            },
            400,
            "disagree",
        ),
        (
            {
                "model": "ragsearch:docs",
                "filter": {"$bogus": 1},
                "messages": [{"role": "user", "content": "x"}],
            },
            400,
            "",
        ),
        (
            {"model": "ragsearch:docs", "messages": [{"role": "user", "content": "x" * 5000}]},
            400,
            "limit",
        ),
    ],
)
def test_bad_chat_requests_get_openai_shaped_4xx(
    client: TestClient, body: dict[str, Any], status: int, words: str
) -> None:
    for stream in (False, True):
        response = client.post("/v1/chat/completions", json={**body, "stream": stream})
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert words in error["message"]


def test_malformed_json_gets_an_openai_shaped_400(client: TestClient) -> None:
    response = client.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_auth_errors_use_the_openai_shape(corpus: Settings, tmp_path: Any) -> None:
    settings = corpus.model_copy(update={"data_dir": tmp_path / "data"})
    build_corpus(settings)
    with TestClient(create_app(settings)) as keyed:
        catalog = keyed.app.state.engine.index.catalog  # type: ignore[attr-defined]
        secret, _ = create_key(catalog, "docs-reader", ["read"], collections=["docs"])
        anonymous = openai.OpenAI(
            base_url=f"{keyed.base_url}/v1", api_key="rsk_nope", http_client=keyed
        )
        with pytest.raises(openai.AuthenticationError, match="unknown or revoked"):
            anonymous.models.list()
        reader = openai.OpenAI(base_url=f"{keyed.base_url}/v1", api_key=secret, http_client=keyed)
        assert [m.id for m in reader.models.list()] == ["ragsearch", "ragsearch:docs"]
        assert "rotated" in (_ask(reader, QUESTION, model="ragsearch").choices[0].message.content)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            _ask(reader, QUESTION, model="ragsearch:other")
        assert denied.value.body["type"] == "permission_error"  # type: ignore[index]
        tools = keyed.get("/v1/tools")
        assert tools.status_code == 401 and tools.json()["error"]["type"] == "authentication_error"


def test_open_mode_accepts_an_openai_placeholder_key(corpus: Settings, tmp_path: Any) -> None:
    settings = corpus.model_copy(update={"data_dir": tmp_path / "data"})
    build_corpus(settings)
    with TestClient(create_app(settings)) as client:
        placeholder = openai.OpenAI(
            base_url=f"{client.base_url}/v1", api_key="sk-placeholder", http_client=client
        )
        assert "ragsearch" in [m.id for m in placeholder.models.list()]
