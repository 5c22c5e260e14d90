"""Follow-up questions in a chat, rewritten into standalone search queries.

"And how long are they kept?" finds nothing useful on its own: retrieval needs the topic of
the earlier turns. With a chat model configured it is asked to rewrite the question
(deterministically: greedy decoding, a short prompt); without one, or when that call fails, a
heuristic does it: an anaphoric or very short follow-up gets the previous question appended
(stopwords cost nothing: retrieval drops them). Either way the result is a plain query string;
a first question is returned unchanged, so a one-turn chat retrieves exactly what `/v1/answer`
would.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from indexer.errors import ProviderError
from indexer.lexical import query_tokens
from indexer.providers.base import ChatMessage, ChatModel, ChatOptions
from indexer.records import Usage

__all__ = ["Rewrite", "heuristic_rewrite", "is_followup", "standalone_query"]

Turn = tuple[str, str]

log = logging.getLogger("ragsearch.followup")

REWRITE_PROMPT = (
    "You turn the last question of a conversation into one standalone search query. "
    "Resolve pronouns and references using the earlier turns, keep names, identifiers and "
    "the language of the last question, add nothing else. Reply with the query only."
)
_TURNS_FOR_MODEL = 6  # earlier turns shown to the rewriting model
_ANSWER_CHARS = 400  # an earlier answer is cut to this before it is shown
_SHORT_FOLLOWUP = 1  # a question with this many content words or fewer leans on context
_CJK_SHORT_FOLLOWUP = 4  # characters, for a Chinese question
_PREVIOUS_CHARS = 300  # of the previous question carried into a rewritten follow-up

_EN_OPENERS = re.compile(
    r"^\s*(and|also|but|so|then|what about|how about|what if|same for|and what about)\b",
    re.IGNORECASE,
)
_EN_ANAPHORA = frozenset(
    [
        *("it", "its", "it's", "they", "them", "their", "theirs", "there", "one", "ones"),
        *("this", "that", "these", "those", "he", "him", "his", "she", "her"),
    ]
)
_ZH_OPENERS = ("那", "那么", "还有", "另外", "而", "并且", "以及", "再")
_ZH_ANAPHORA = ("它", "它们", "他们", "她们", "这个", "那个", "这些", "那些", "其", "该", "上述")
_ZH_ENDINGS = ("呢", "呢？", "呢?")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class Rewrite:
    """The query to retrieve with, how it was made, and what a model call cost."""

    query: str
    method: str  # "none" (first question), "unchanged", "heuristic" or "model"
    usage: Usage | None = None
    warning: str | None = None


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", text.lower())


def is_followup(question: str) -> bool:
    """Whether `question` probably depends on an earlier turn (short or anaphoric)."""
    text = question.strip()
    if _CJK.search(text):
        core = text.rstrip("？?。！! ")
        return (
            core.startswith(_ZH_OPENERS)
            or any(word in core for word in _ZH_ANAPHORA)
            or text.endswith(_ZH_ENDINGS)
            or len(_CJK.findall(core)) <= _CJK_SHORT_FOLLOWUP
        )
    if _EN_OPENERS.match(text):
        return True
    if any(word in _EN_ANAPHORA for word in _words(text)):
        return True
    return len(query_tokens(text)) <= _SHORT_FOLLOWUP


def heuristic_rewrite(question: str, earlier_questions: Sequence[str]) -> str:
    """The question, plus the previous question's content words when it is a follow-up.

    Earlier questions are resolved in order first, so a chain of follow-ups keeps its topic.
    """
    previous = ""
    for earlier in earlier_questions:
        previous = _combine(earlier, previous) if previous else earlier.strip()
    if not previous:
        return question.strip()
    return _combine(question, previous)


def _combine(question: str, previous: str) -> str:
    text = question.strip()
    if not is_followup(text):
        return text
    # The previous question whole, not its tokens: Chinese tokens include character bigrams
    # that span word boundaries, and the lexical index re-tokenises the text anyway.
    return f"{text} {previous.strip()[-_PREVIOUS_CHARS:]}"


def _clean(reply: str) -> str:
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    first = re.sub(r"^(standalone )?(search )?query\s*[:：]\s*", "", first, flags=re.IGNORECASE)
    return first.strip().strip("\"'“”‘’「」").strip()


async def standalone_query(
    question: str,
    history: Sequence[Turn],
    chat: ChatModel | None,
    model: str,
) -> Rewrite:
    """A search query for `question` that stands on its own, given the earlier turns."""
    earlier = [content for role, content in history if role == "user" and content.strip()]
    if not earlier:
        return Rewrite(question.strip(), "none")
    fallback = heuristic_rewrite(question, earlier)
    if chat is None:
        return Rewrite(fallback, "heuristic" if fallback != question.strip() else "unchanged")
    turns = [(r, c) for r, c in history if r in ("user", "assistant") and c.strip()]
    shown = "\n".join(
        f"{role}: {content[:_ANSWER_CHARS]}" for role, content in turns[-_TURNS_FOR_MODEL:]
    )
    messages = [
        ChatMessage("system", REWRITE_PROMPT),
        ChatMessage("user", f"Conversation:\n{shown}\n\nLast question: {question.strip()}"),
    ]
    # Temperature 0 asks for greedy decoding: the same conversation gives the same query.
    options = ChatOptions(model=model, max_tokens=128, temperature=0.0)
    try:
        result = await chat.complete(messages, options)
    except ProviderError as exc:
        # The detail (URLs, provider messages) is for the server log, not for callers.
        log.warning("follow-up rewrite failed, heuristic used: %s: %s", exc.code, exc.message)
        warning = (
            "follow-up rewrite by the chat model failed, heuristic used: "
            "the model provider is unavailable"
        )
        return Rewrite(fallback, "heuristic", warning=warning)
    rewritten = _clean(result.content)
    if not rewritten or len(rewritten) > 4 * (len(question) + len(earlier[-1])) + 40:
        return Rewrite(fallback, "heuristic", usage=result.usage)
    return Rewrite(rewritten, "model", usage=result.usage)
