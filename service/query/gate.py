"""The decline gate: is the evidence strong enough to answer from?

Three signals, each measured on the best few sources:

- `dense`: the query-to-chunk cosine of the collection's own embedder (when dense retrieval
  ran: MiniLM does not cover Chinese, so Chinese queries have none there);
- `coverage`: the share of the question's *content* terms (question words and stopwords
  removed, English and Chinese) that a single source contains, each term weighted by its IDF
  in the collection, so "mount" (common in the docs) counts far less than "Everest"
  (absent from them);
- `rerank`: the reranker's score, when one is configured.

Thresholds depend on the embedder (its cosines live on its own scale) and were calibrated on
the development set of `scripts/eval_answers.py`; settings override them (see README).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from indexer.lexical import chinese_words
from indexer.sentences import CJK_CHARS
from service.query.records import Hit

__all__ = [
    "GateDecision",
    "GateOverrides",
    "GateThresholds",
    "Term",
    "content_terms",
    "decide",
    "thresholds_for",
]

SOURCES_CHECKED = 3  # signals are taken from the best few sources

_ENGLISH_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each else ever few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other ought our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up upon
    very was we were what whatever when where whether which while who whom whose why will with
    within without would you your yours yourself yourselves
    please tell explain show know want need get got use using used make made give way ways
    thing things something anything someone anyone one ones many much lot lots kind sort
    best good better really actually possible able does
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_CHINESE_STOPWORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 吗 呢 吧 啊 么 把 被 给 让 从 对 向 为 以 之 于 而 并 就 都 也 还 又
    我 你 他 她 它 我们 你们 他们 这 那 这个 那个 这些 那些 哪 哪里 哪儿 哪个 哪些 什么 怎么
    怎样 怎么样 如何 为什么 为何 多少 几 多 是否 能否 可以 能 能够 会 应该 要 需要 想 有 没有
    请问 请 一下 一个 一些 进行 使用 用 做 中 里 上 下 时 时候 方法 问题 吗？ 呢？
    谁 由 是由 哪一年 哪年 哪一 哪位 哪家 哪种 哪天 哪国 哪两个 什么样 什么时候 何时 何地 多久
    多长 多大 多高 多远 几个 几种 几年 几次 两个
    """.split()  # noqa: SIM905 - a word list reads better as text
)
# "how long", "how often": the second word asks for a quantity, it is not a topic.
_HOW_QUANTITY = frozenset(["long", "often", "many", "much", "far", "soon", "old", "frequently"])
_WORD = re.compile(rf"[{CJK_CHARS}]+|[^\W{CJK_CHARS}]+(?:[-._'][^\W{CJK_CHARS}]+)*")
_CJK = re.compile(rf"[{CJK_CHARS}]")
_FUNCTION_CHARS = "的了是吗呢吧啊"  # rarely inside a word at its edge


@dataclass(frozen=True, slots=True)
class Term:
    """A content term of a question: how to find it in text and in the lexical index."""

    text: str
    cjk: bool
    phrase: tuple[str, ...]  # lexical-index tokens that spell it, adjacent (bigrams for CJK)


@dataclass(frozen=True, slots=True)
class GateThresholds:
    """When to answer. `dense` is None for embedders whose cosines were not calibrated."""

    dense: float | None  # with a similarity signal: this cosine and `coverage_with_dense`
    dense_strong: float | None  # this cosine answers alone (a paraphrase of the sources)
    coverage_with_dense: float  # content-term coverage needed beside a `dense` cosine
    coverage: float  # without a similarity signal: the coverage that answers
    rerank: float  # with a reranker: below this score, decline


# Calibrated on the dev split of scripts/eval_answers.py (FastAPI docs, English and Chinese;
# BENCHMARKS.md "Answer quality"). MiniLM: on-topic FastAPI questions' best cosine was
# >= 0.53 and their coverage >= 0.55; off-topic ones sharing vocabulary reached cosine 0.55
# only with coverage <= 0.40, and full coverage only with cosine <= 0.29. (A cosine of 0.6
# answering alone rescued SciFact claims on dev but none held out: not taken.) Without a
# similarity signal (Chinese on MiniLM, hashing, Zhipu's uncalibrated cosines) coverage
# decides alone: off-topic FastAPI Chinese questions reached 0.55, on-topic ones mostly
# >= 0.67.
_DEFAULTS: dict[str, GateThresholds] = {
    "local": GateThresholds(
        dense=0.45, dense_strong=0.7, coverage_with_dense=0.5, coverage=0.6, rerank=0.1
    ),
    "zhipu": GateThresholds(
        dense=None, dense_strong=None, coverage_with_dense=0.5, coverage=0.6, rerank=0.1
    ),
    "hashing": GateThresholds(
        dense=None, dense_strong=None, coverage_with_dense=0.5, coverage=0.6, rerank=0.1
    ),
}


def thresholds_for(
    provider: str,
    *,
    dense: float | None = None,
    coverage: float | None = None,
    rerank: float | None = None,
) -> GateThresholds:
    """The calibrated thresholds for an embedder provider, with any overrides applied."""
    base = _DEFAULTS.get(provider, _DEFAULTS["hashing"])
    return GateThresholds(
        dense=base.dense if dense is None else dense,
        dense_strong=base.dense_strong,
        coverage_with_dense=base.coverage_with_dense,
        coverage=base.coverage if coverage is None else coverage,
        rerank=base.rerank if rerank is None else rerank,
    )


@dataclass(frozen=True, slots=True)
class GateOverrides:
    """Thresholds set by the operator (settings); None keeps the embedder's calibrated one."""

    dense: float | None = None
    coverage: float | None = None
    rerank: float | None = None

    def thresholds(self, provider: str) -> GateThresholds:
        return thresholds_for(
            provider, dense=self.dense, coverage=self.coverage, rerank=self.rerank
        )


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether to answer, why, and the signals the decision was made on."""

    answer: bool
    reason: str
    dense: float | None
    coverage: float
    rerank: float | None
    terms: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "reason": self.reason,
            "dense": None if self.dense is None else round(self.dense, 4),
            "coverage": round(self.coverage, 4),
            "rerank": None if self.rerank is None else round(self.rerank, 4),
            "terms": list(self.terms),
        }


def _stem(word: str) -> str:
    """A light English stem, enough to match "tokens" with "token" and "mounting" with "mount"."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + keep
    return word


def content_terms(question: str) -> list[Term]:
    """The question's content terms: no question words or stopwords; Chinese by jieba words."""
    terms: dict[str, Term] = {}
    words = _WORD.findall(question.lower())
    for previous, word in zip(["", *words], words, strict=False):
        if previous == "how" and word in _HOW_QUANTITY:
            continue
        if _CJK.match(word):
            for piece in _chinese_terms(word):
                bigrams = tuple(piece[i : i + 2] for i in range(len(piece) - 1))
                terms.setdefault(piece, Term(piece, True, bigrams))
        elif word not in _ENGLISH_STOPWORDS and not word.isdigit() and len(word) > 1:
            terms.setdefault(word, Term(word, False, (word,)))
    return list(terms.values())


def _chinese_terms(run: str) -> list[str]:
    """Content words of a Chinese run: jieba's words without function characters at their
    edges (`项是` -> `项`), a lone character joined to the next word (`拆`+`分成`)."""
    pieces = []
    for word in chinese_words(run):
        if word in _CHINESE_STOPWORDS:
            pieces.append("")  # a boundary: nothing joins across it
            continue
        pieces.append(word.strip(_FUNCTION_CHARS) if len(word) > 1 else word)
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        if not piece:
            if len(carry) > 1:
                merged.append(carry)
            carry = ""
        elif len(piece) == 1:
            carry += piece
        else:
            merged.append(carry + piece)
            carry = ""
    if len(carry) > 1:
        merged.append(carry)
    return [m for m in merged if m not in _CHINESE_STOPWORDS]


def idf(total: int, frequency: int) -> float:
    """Inverse document frequency. A term the collection never contains weighs as much as
    one it holds once: absent words are a strong sign, but a paraphrase has them too."""
    return math.log((total + 1) / (max(frequency, 1) + 0.5))


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if not _CJK.match(w)}


def coverage(terms: Sequence[Term], weights: Sequence[float], text: str) -> float:
    """IDF-weighted share of `terms` that occur in `text` (0..1)."""
    total = sum(weights)
    if not terms or total <= 0:
        return 0.0
    words = _words(text)
    lowered = text.lower()
    found = sum(w * _presence(term, lowered, words) for term, w in zip(terms, weights, strict=True))
    return found / total


def _presence(term: Term, lowered: str, words: set[str]) -> float:
    """1 if `term` occurs; for Chinese, the share of its bigrams that occur (word boundaries
    are uncertain there: `拆分成` in a question, `拆分为` in the text)."""
    if not term.cjk:
        return 1.0 if _stem(term.text) in words else 0.0
    if term.text in lowered:
        return 1.0
    return sum(b in lowered for b in term.phrase) / len(term.phrase)


def _searchable(hit: Hit) -> str:
    chunk = hit.chunk
    return "\n".join((chunk.title or "", *chunk.heading_path, chunk.text))


def decide(
    hits: Sequence[Hit],
    terms: Sequence[Term],
    weights: Sequence[float],
    limits: GateThresholds,
) -> GateDecision:
    """Answer, or decline and say why, from the best sources' signals."""
    top = hits[:SOURCES_CHECKED]
    names = tuple(t.text for t in terms)
    if not top:
        return GateDecision(False, "no source matched the question", None, 0.0, None, names)
    covered = max(coverage(terms, weights, _searchable(h)) for h in top)
    dense_scores = [h.scores["dense"] for h in hits if "dense" in h.scores]
    dense = max(dense_scores) if dense_scores else None
    reranks = [h.scores["rerank"] for h in top if "rerank" in h.scores]
    rerank = max(reranks) if reranks else None

    def decision(answer: bool, reason: str) -> GateDecision:
        return GateDecision(answer, reason, dense, covered, rerank, names)

    if rerank is not None and rerank < limits.rerank:
        # A reranker can veto; it cannot answer alone (its scale depends on the service).
        return decision(False, f"the reranker scores the best source {rerank:.2f}")
    if dense is not None and limits.dense is not None and limits.dense_strong is not None:
        if dense >= limits.dense_strong:
            return decision(True, f"similarity {dense:.2f} >= {limits.dense_strong:.2f}")
        if dense >= limits.dense and covered >= limits.coverage_with_dense:
            return decision(
                True, f"similarity {dense:.2f} and {covered:.0%} of the question's terms"
            )
        return decision(
            False,
            f"the sources are not close enough (similarity {dense:.2f}, "
            f"{covered:.0%} of the question's terms)",
        )
    if covered >= limits.coverage:
        return decision(True, f"sources contain the question's terms ({covered:.0%})")
    return decision(False, f"the sources hold only {covered:.0%} of the question's terms")
