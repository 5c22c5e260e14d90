"""What the fake Zhipu server knows and computes: the real service's limits and messages,
and deterministic stand-ins for its models (token counts, embeddings, rerank scores, answers).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

EMBEDDING_LIMITS = {"embedding-3": 3072, "embedding-2": 512}
# The docs bound a request's whole input array (8K tokens); what Zhipu answers past it is
# not documented, so the fake answers 1214 (parameter invalid), one of the plausible codes.
EMBEDDING_ARRAY_TOKENS = 8192
EMBEDDING_DIMENSIONS = (256, 512, 1024, 2048)
# model: (context window, max output tokens), from the docs' GLM-4.6 guide and Dify's
# zhipuai model files; written out here, not imported, so the client's table is tested.
CHAT_MODELS = {
    "glm-4.6": (200_000, 131_072),
    "glm-4.5": (131_072, 98_304),
    "glm-4.5-air": (131_072, 98_304),
    "glm-4.5-flash": (131_072, 98_304),
    "glm-4-plus": (131_072, 4_095),
    "glm-4-long": (1_048_576, 4_095),
}
THINKING_MODELS = {"glm-4.6", "glm-4.5", "glm-4.5-air", "glm-4.5-flash"}

MESSAGES = {
    "1001": "Header中未收到Authorization参数，无法进行身份验证。",
    "1002": "Authorization Token非法，请确认Authorization Token正确传递。",
    "1110": "您的账户当前处于非活动状态。请检查账户信息",
    "1111": "您的账户不存在",
    "1112": "您的账户已被锁定，请联系客服解锁",
    "1113": "您的账户已欠费，请充值后重试。",
    "1120": "无法成功访问您的账户，请稍后重试",
    "1121": "账户存违规行为，账号已被锁定",
    "1210": "API 调用参数有误，请检查文档。",
    "1211": "模型不存在，请检查模型代码。",
    "1214": "输入参数非法",
    "1220": "您无权访问该模型",
    "1234": "网络错误，错误id：fake，请联系客服",
    "1261": "Prompt 超长",
    "1301": "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容。",
    "1302": "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。",
    "1305": "该 API 已触发流量限制",
    "1312": "该模型当前访问量过大，请您稍后再试",
}

_WORD = re.compile(r"[a-z0-9]+|[\u2e80-\U0002ffff]")


def fake_tokens(text: str) -> int:
    """The fake's token count: Zhipu's rule of thumb (a CJK char 1, else 4 chars a token)."""
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return wide + -(-(len(text) - wide) // 4)


def terms(text: str) -> list[str]:
    """Lower-cased words, and single CJK characters, of `text`."""
    return _WORD.findall(text.lower())


def fake_embedding(text: str, dimensions: int) -> dict[int, float]:
    """A hashed bag of words, as {position: value}: texts sharing words point the same way.

    Sparse and not unit length (clients must normalise). Position 0 is never zero, so no
    text embeds to the zero vector.
    """
    vec: dict[int, float] = {0: 0.15}
    for term in terms(text):
        h = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=8).digest(), "little")
        vec[h % dimensions] = vec.get(h % dimensions, 0.0) + (3.0 if h >> 63 else -3.0)
    return vec


def vector_json(sparse: dict[int, float], dimensions: int) -> str:
    """`sparse` as a dense JSON array of floats.

    Built by hand because json.dumps of 64 x 2048 floats costs tens of milliseconds a
    request, which would make the fake, not the client, the bottleneck of a benchmark.
    """
    parts = ["0.0"] * dimensions
    for position, value in sparse.items():
        if position < dimensions:
            parts[position] = repr(round(value, 5))
    return "[" + ",".join(parts) + "]"


def rerank_score(query: str, document: str) -> float:
    """In [0, 1]: the share of the query's terms found in the document."""
    wanted = set(terms(query))
    if not wanted:
        return 0.0
    return round(0.05 + 0.9 * len(wanted & set(terms(document))) / len(wanted), 6)


def fake_answer(messages: list[dict[str, Any]]) -> str:
    """Quote the first sentence of source 1's text in the last user message, citing it.

    Sources come fenced (`<source-BOUNDARY n="1">`, a header line, the text); without a
    fence, the text after `[1]` is quoted.
    """
    last = str(next(m["content"] for m in reversed(messages) if m.get("role") == "user"))
    found = re.search(r'<source-[0-9a-f]+ n="1">\n[^\n]*\n(.+)', last) or re.search(
        r"\[1\]\s*(.+)", last
    )
    if not found:
        return "The sources do not contain the answer."
    sentence = re.split(r"(?<=[.!?。！？])\s*", found.group(1).strip(), maxsplit=1)[0]
    return f"{sentence} [1]"
