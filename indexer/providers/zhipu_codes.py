"""The one table of Zhipu error codes: which error each becomes, what to tell the user, retry.

From the docs' error-code page (docs.bigmodel.cn/cn/api/api-code, docs.z.ai/api-reference/
api-code) and its FAQ: account states (1110-1121) and an empty balance arrive as HTTP 429,
like rate limits, so decisions follow `error.code`, never the status alone. HTTP statuses
decide only for codes not listed here and for bodies that are not Zhipu JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderModelUnavailable,
    ProviderQuotaError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)

__all__ = ["CODES", "TOO_LONG_CODES", "Rule", "rule_for"]


@dataclass(frozen=True, slots=True)
class Rule:
    """How to report one code: the error class, an English summary saying what to do, and
    whether retries should back off longer (the model itself is overloaded)."""

    error: type[ProviderError]
    summary: str
    slow: bool = False


_KEY = "the Zhipu API key was rejected; check ZHIPUAI_API_KEY"
_ACCOUNT = "the Zhipu account {}; see your account page at open.bigmodel.cn or contact support"
_PARAM = "Zhipu rejected a request parameter"
_QUOTA = "Zhipu usage quota exhausted until it resets; wait or raise the quota"
_SERVER = "Zhipu server or network failure"

CODES: dict[int, Rule] = {
    500: Rule(ProviderUnavailable, _SERVER),
    1000: Rule(ProviderAuthError, _KEY),
    1001: Rule(ProviderAuthError, "no Zhipu API key was sent; set ZHIPUAI_API_KEY"),
    1002: Rule(ProviderAuthError, _KEY),
    1003: Rule(ProviderAuthError, "the Zhipu API key or token has expired; create a new key"),
    1004: Rule(ProviderAuthError, _KEY),
    1110: Rule(ProviderAuthError, _ACCOUNT.format("is inactive")),
    1111: Rule(ProviderAuthError, _ACCOUNT.format("does not exist (check ZHIPUAI_API_KEY)")),
    1112: Rule(ProviderAuthError, _ACCOUNT.format("is locked")),
    1113: Rule(ProviderQuotaError, "the Zhipu account is in arrears: top up the balance"),
    1120: Rule(ProviderUnavailable, "Zhipu could not reach your account right now"),
    1121: Rule(ProviderAuthError, _ACCOUNT.format("was locked for a policy violation")),
    1200: Rule(ProviderUnavailable, _SERVER),
    1210: Rule(ProviderRejected, _PARAM),
    1211: Rule(ProviderModelUnavailable, "Zhipu does not know this model; check the model setting"),
    1212: Rule(ProviderRejected, "this Zhipu model does not support the call (e.g. streaming)"),
    1213: Rule(ProviderRejected, "Zhipu did not receive a required parameter"),
    1214: Rule(ProviderRejected, _PARAM),
    1215: Rule(ProviderRejected, "Zhipu refuses two parameters set together"),
    1220: Rule(ProviderModelUnavailable, "this Zhipu account has no permission for this API"),
    1221: Rule(ProviderModelUnavailable, "this Zhipu API is offline; check RAGSEARCH_ZHIPU_*"),
    1222: Rule(ProviderModelUnavailable, "this Zhipu API does not exist; check the base URL"),
    1230: Rule(ProviderUnavailable, _SERVER),
    1231: Rule(ProviderRejected, "Zhipu already has a request with this request_id"),
    1234: Rule(ProviderUnavailable, _SERVER),
    1261: Rule(ProviderRejected, "the input is too long for the model; shorten it"),
    1300: Rule(ProviderRejected, "Zhipu's policy blocked this call"),
    1301: Rule(ProviderRejected, "Zhipu's safety filter refused this content"),
    1302: Rule(
        RateLimited, "Zhipu concurrency limit reached; lower RAGSEARCH_ZHIPU_MAX_CONCURRENCY"
    ),
    1303: Rule(RateLimited, "Zhipu request-rate limit reached"),
    1304: Rule(ProviderQuotaError, "Zhipu's daily call limit for this API is reached"),
    1305: Rule(RateLimited, "Zhipu's traffic limit was triggered", slow=True),
    1308: Rule(ProviderQuotaError, _QUOTA),
    1309: Rule(ProviderQuotaError, "the Zhipu plan has expired; renew it"),
    1310: Rule(ProviderQuotaError, _QUOTA),
    1311: Rule(ProviderModelUnavailable, "the Zhipu plan does not include this model"),
    1312: Rule(RateLimited, "the Zhipu model is overloaded; try later or another model", slow=True),
    1313: Rule(ProviderQuotaError, "Zhipu restricted this account under its fair-use policy"),
}

# The embeddings endpoint's answer to an array over its total token budget is not
# documented; these are the codes a too-long input can plausibly bring. A refused batch of
# several inputs is split and retried (see `ZhipuEmbedder`).
TOO_LONG_CODES = frozenset({"1210", "1214", "1261"})


def rule_for(code: str | None, status: int | None) -> Rule:
    """The rule for a Zhipu `error.code`, else for the HTTP status."""
    if code is not None and code.isdigit() and int(code) in CODES:
        return CODES[int(code)]
    if status is None or status >= 500:
        return Rule(ProviderUnavailable, _SERVER)
    if status == 401:
        return Rule(ProviderAuthError, _KEY)
    if status == 403:
        return Rule(ProviderAuthError, "the Zhipu API key has no permission for this request")
    if status == 429:
        return Rule(RateLimited, "Zhipu rate limit reached")
    if 400 <= status < 500:
        return Rule(ProviderRejected, "Zhipu rejected the request")
    return Rule(ProviderError, "unexpected answer from Zhipu")
