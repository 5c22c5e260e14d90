"""The decline gate: off-topic questions are declined (GLM is never called for them), on-topic
ones answered; content terms and their weights in English and Chinese."""

from __future__ import annotations

import asyncio

import pytest

from indexer.collections import create_collection
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.records import StoredChunk
from indexer.settings import Settings
from service.query.engine import Engine
from service.query.gate import GateThresholds, Term, content_terms, coverage, decide, idf
from service.query.records import AnswerRequest, Hit
from tests.fakes.zhipu_server import FakeZhipu

DOCS = {
    "mounting.md": "# Sub applications\n\nYou can mount a sub-application at a path. The "
    "mounted application gets its own docs. Mount it with app.mount.",
    "cors.md": "# CORS\n\nEnable CORS with the CORSMiddleware: list the allowed origins. "
    "Browsers send a preflight OPTIONS request first.",
    "zh.md": "# 中间件\n\n你可以在 FastAPI 应用中添加中间件。中间件会在每个请求之前运行。",
}
OFF_TOPIC = [
    "How tall is Mount Everest?",
    "What is a good recipe for banana bread?",
    "Who wrote Hamlet?",
    "法国的首都是哪里？",
    "怎么做红烧肉？",
]
ON_TOPIC = ["How do I mount a sub-application?", "How do I enable CORS?", "如何添加中间件？"]


def test_content_terms_drop_question_words_in_english_and_chinese() -> None:
    assert [t.text for t in content_terms("How long are the logs kept, and why?")] == [
        "logs",
        "kept",
    ]
    assert [t.text for t in content_terms("法国的首都是哪里？")] == ["法国", "首都"]
    term = content_terms("如何添加中间件")[-1]
    assert term.cjk and term.phrase == ("中间", "间件")


def test_absent_terms_weigh_like_the_rarest_present_one() -> None:
    assert idf(1000, 0) == idf(1000, 1) > idf(1000, 50) > idf(1000, 900)


def test_coverage_weights_rare_terms_and_credits_chinese_bigrams() -> None:
    terms = [Term("mount", False, ("mount",)), Term("everest", False, ("everest",))]
    assert coverage(terms, [1.0, 3.0], "You can mount an app") == pytest.approx(0.25)
    split = [Term("拆分成", True, ("拆分", "分成"))]
    assert coverage(split, [1.0], "把应用拆分为多个文件") == pytest.approx(0.5)


def _hit(text: str, dense: float | None) -> Hit:
    chunk = StoredChunk(1, 1, 0, text, 0, len(text), (), None, "a.md", "A", {})
    return Hit(chunk, 1.0, {} if dense is None else {"dense": dense})


LIMITS = GateThresholds(
    dense=0.45, dense_strong=0.7, coverage_with_dense=0.5, coverage=0.6, rerank=0.2
)


@pytest.mark.parametrize(
    ("dense", "covered", "answer"),
    [
        (0.8, 0.0, True),  # a close paraphrase
        (0.5, 1.0, True),
        (0.5, 0.4, False),  # related words, not the answer
        (0.3, 1.0, False),  # every word, wrong meaning ("React component with hooks")
        (None, 1.0, True),  # no similarity signal: coverage decides
        (None, 0.5, False),
    ],
)
def test_decision_needs_similarity_where_the_embedder_gives_one(
    dense: float | None, covered: float, answer: bool
) -> None:
    terms = [Term("alpha", False, ("alpha",)), Term("beta", False, ("beta",))]
    text = {1.0: "alpha beta", 0.5: "alpha", 0.4: "alpha", 0.0: "gamma"}[covered]
    weights = [1.0, 1.0] if covered != 0.4 else [2.0, 3.0]
    decision = decide([_hit(text, dense)], terms, weights, LIMITS)
    assert decision.answer is answer, decision.reason
    assert decision.reason


def test_rerank_score_vetoes() -> None:
    terms = [Term("alpha", False, ("alpha",))]
    hit = Hit(_hit("alpha", None).chunk, 1.0, {"rerank": 0.05})
    assert not decide([hit], terms, [1.0], LIMITS).answer


@pytest.fixture
def kb(zhipu_settings: Settings, fake_zhipu: FakeZhipu) -> Settings:
    async def load() -> None:
        engine = Engine(zhipu_settings)
        index = Index(zhipu_settings, writer=True)
        try:
            collection = create_collection(index, engine.embedders, "kb")
            items = [SourceItem(n, n, data=t.encode()) for n, t in DOCS.items()]
            await Ingestor(index, collection, engine.embedders.for_collection(collection)).run(
                items
            )
        finally:
            index.close()
            await engine.aclose()

    asyncio.run(load())
    fake_zhipu.reset()
    return zhipu_settings


def _ask(settings: Settings, question: str) -> dict[str, object]:
    async def run() -> dict[str, object]:
        engine = Engine(settings)
        try:
            return (await engine.answer(AnswerRequest(query=question, collection="kb"))).as_dict()
        finally:
            await engine.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_are_declined_before_glm(
    kb: Settings, fake_zhipu: FakeZhipu, question: str
) -> None:
    body = _ask(kb, question)
    assert body["grounded"] is False and body["citations"] == []
    assert body["sources"], "the closest sources are still listed"
    assert any(str(w).startswith("declined: ") for w in body["warnings"])  # type: ignore[attr-defined]
    assert fake_zhipu.calls("/chat/completions") == []
    assert ("知识库" in str(body["answer"])) is (question[0] > "\u2e80")


@pytest.mark.parametrize("question", ON_TOPIC)
def test_on_topic_questions_reach_glm(kb: Settings, fake_zhipu: FakeZhipu, question: str) -> None:
    body = _ask(kb, question)
    assert body["grounded"] is True and body["model"] == "glm-4.6"
    assert len(fake_zhipu.calls("/chat/completions")) == 1
