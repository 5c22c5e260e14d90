"""What ragsearch knows about each Zhipu model: limits, prices, and the token estimate.

Sources (see README "Zhipu compatibility"): the docs' GLM-4.6 migration guide (200K context,
128K output); Dify's zhipuai plugin model files (`models/zhipuai/models/llm/*.yaml`:
`context_size`, `max_tokens.max`, `pricing` per 1K tokens in RMB); the old embedding page
quoted by SDK users ("64 inputs, at most 8K tokens per array"). Prices change; override them
with `RAGSEARCH_ZHIPU_CHAT_PRICES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHAT_MODELS",
    "DEFAULT_CHAT_LIMITS",
    "EMBEDDING_MODELS",
    "MAX_EMBED_BATCH",
    "ChatLimits",
    "chat_limits",
    "estimate_tokens",
    "usage_tokens",
]

# model: (allowed dimensions, input token limit per item)
EMBEDDING_MODELS: dict[str, tuple[tuple[int, ...], int]] = {
    "embedding-3": ((256, 512, 1024, 2048), 3072),
    "embedding-2": ((1024,), 512),
}
MAX_EMBED_BATCH = 64


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """A chat model's context window and output cap (tokens) and its prices (CNY per 1M)."""

    context_window: int
    max_output_tokens: int
    input_price: float
    output_price: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, float]:
        """(input cost, output cost) in CNY."""
        return prompt_tokens * self.input_price / 1e6, completion_tokens * self.output_price / 1e6


CHAT_MODELS: dict[str, ChatLimits] = {
    "glm-4.6": ChatLimits(200_000, 131_072, 2.0, 8.0),
    "glm-4.5": ChatLimits(131_072, 98_304, 2.0, 8.0),
    "glm-4.5-air": ChatLimits(131_072, 98_304, 0.8, 2.0),
    "glm-4.5-flash": ChatLimits(131_072, 98_304, 0.0, 0.0),
    "glm-4-plus": ChatLimits(131_072, 4_095, 5.0, 5.0),
    "glm-4-long": ChatLimits(1_048_576, 4_095, 1.0, 1.0),
}
# An unlisted model: assume the smallest current window and output cap rather than fail.
DEFAULT_CHAT_LIMITS = ChatLimits(128_000, 4_095, 2.0, 8.0)


def chat_limits(model: str, prices: dict[str, tuple[float, float]] | None = None) -> ChatLimits:
    """The limits of `model` (case-insensitive), with `prices` overriding the table's."""
    known = CHAT_MODELS.get(model.lower(), DEFAULT_CHAT_LIMITS)
    override = (prices or {}).get(model) or (prices or {}).get(model.lower())
    if override is None:
        return known
    return ChatLimits(known.context_window, known.max_output_tokens, *override)


def estimate_tokens(text: str) -> int:
    """A conservative (high) estimate of the tokens `text` costs a Zhipu model.

    There is no offline GLM tokenizer. Zhipu's rule of thumb is ~1.5 CJK characters or
    ~4 English characters per token; we count every character from U+2E80 up (CJK, kana,
    Hangul, full-width forms, emoji) as a whole token and other text as one token per three
    characters, rounded up. Overestimating only makes chunks a little smaller; underestimating
    would send inputs the API truncates or refuses.
    """
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    narrow = len(text) - wide
    return wide + -(-narrow // 3)


def usage_tokens(answer: dict[str, Any], field: str) -> int:
    """`answer.usage[field]` when it is an integer, else 0."""
    usage = answer.get("usage")
    value = usage.get(field, 0) if isinstance(usage, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
