"""The embedded default answerer: quotes the sentences that best match the question.

No model, no network: each picked sentence is copied verbatim from a source and cited, so an
answer can never say something the knowledge base does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from indexer.lexical import query_tokens
from indexer.records import StoredChunk
from indexer.sentences import split_sentences
from service.query.display import display_text, join_cjk

MAX_SENTENCES = 3
_MIN_SENTENCE_CHARS = 8


@dataclass(frozen=True, slots=True)
class _Scored:
    score: float
    source: int  # 1-based source number
    position: int
    text: str


def coverage(question: str, text: str) -> float:
    """Share of the question's terms that occur in `text` (0..1)."""
    wanted = set(query_tokens(question))
    if not wanted:
        return 0.0
    have = set(query_tokens(text))
    return len(wanted & have) / len(wanted)


def extractive_answer(question: str, sources: Sequence[StoredChunk]) -> str:
    """Up to three best sentences, each followed by its source marker `[n]`."""
    wanted = set(query_tokens(question))
    scored: list[_Scored] = []
    for n, chunk in enumerate(sources, start=1):
        text = display_text(chunk)
        for position, (start, end) in enumerate(split_sentences(text)):
            sentence = text[start:end].strip()
            if len(sentence) < _MIN_SENTENCE_CHARS:
                continue
            terms = set(query_tokens(sentence))
            overlap = len(wanted & terms)
            if not overlap:
                continue
            # Prefer sentences that cover the question, from higher-ranked sources.
            score = overlap / (len(wanted) or 1) + 0.5 / n + 0.01 / (position + 1)
            scored.append(_Scored(score, n, position, " ".join(sentence.split())))
    if not scored:
        return ""
    best = sorted(scored, key=lambda s: -s.score)[:MAX_SENTENCES]
    best.sort(key=lambda s: (s.source, s.position))  # read in document order
    # One marker after each run of sentences from the same source.
    answer = ""
    for i, picked in enumerate(best):
        last_of_run = i + 1 == len(best) or best[i + 1].source != picked.source
        answer = join_cjk(answer, picked.text)
        if last_of_run:
            answer = join_cjk(answer, f"[{picked.source}]")
    return answer
