"""How the Zhipu client retries and reports failures, against the fake server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from indexer.errors import (
    ProviderAuthError,
    ProviderModelUnavailable,
    ProviderQuotaError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from indexer.providers.zhipu import ZhipuEmbedder
from indexer.providers.zhipu_codes import CODES
from indexer.settings import Settings
from tests.fakes.zhipu_server import FakeZhipu

if TYPE_CHECKING:
    from tests.fakes.fixtures import RecordedSleep

pytestmark = pytest.mark.anyio

BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


async def embed_one(settings: Settings, sleep: RecordedSleep | None = None) -> None:
    embedder = ZhipuEmbedder.from_settings(settings, sleep=sleep or asyncio.sleep)
    try:
        await embedder.embed_query("hello")
    finally:
        await embedder.aclose()


async def test_rate_limit_1302_is_retried_and_succeeds(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(2, status=429, code="1302")
    await embed_one(zhipu_settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 3
    # Exponential backoff from zhipu_backoff_seconds, with up to 50% jitter.
    first, second = recorded_sleep.waits
    assert 0.001 <= first <= 0.0015 and 0.002 <= second <= 0.003


async def test_retry_after_is_honoured(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(1, status=429, code="1305", retry_after=7)
    await embed_one(zhipu_settings, recorded_sleep)
    assert recorded_sleep.waits == [7.0]


async def test_overload_1305_backs_off_longer(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(1, status=429, code="1305")
    await embed_one(zhipu_settings, recorded_sleep)
    assert recorded_sleep.waits[0] >= 0.004


async def test_rate_limit_retries_run_out(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(10, status=429, code="1302")
    with pytest.raises(
        RateLimited,
        match=r"concurrency limit reached; lower RAGSEARCH_ZHIPU_MAX_CONCURRENCY.*1302.*4 tries",
    ):
        await embed_one(zhipu_settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 1 + zhipu_settings.zhipu_max_retries


async def test_arrears_1113_is_not_retried_despite_429(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(5, status=429, code="1113")
    with pytest.raises(ProviderQuotaError, match="arrears: top up the balance") as info:
        await embed_one(zhipu_settings, recorded_sleep)
    assert "欠费" in str(info.value)  # the server's own words follow our summary
    assert len(fake_zhipu.requests) == 1 and recorded_sleep.waits == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("1110", "account is inactive"),
        ("1111", "account does not exist"),
        ("1112", "account is locked"),
        ("1121", "locked for a policy violation"),
    ],
)
async def test_account_states_sent_as_429_are_auth_errors_not_retried(
    fake_zhipu: FakeZhipu,
    zhipu_settings: Settings,
    recorded_sleep: RecordedSleep,
    code: str,
    words: str,
) -> None:
    fake_zhipu.fail_next(5, status=429, code=code)
    with pytest.raises(ProviderAuthError, match=words) as info:
        await embed_one(zhipu_settings, recorded_sleep)
    assert "see your account page at open.bigmodel.cn or contact support" in info.value.message
    assert info.value.status == 502 and not info.value.retryable
    assert info.value.provider_code == code
    assert len(fake_zhipu.requests) == 1 and recorded_sleep.waits == []


async def test_account_unreachable_1120_is_retried(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(1, status=429, code="1120")
    await embed_one(zhipu_settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 2 and len(recorded_sleep.waits) == 1


async def test_model_overloaded_1312_is_retried_with_longer_backoff(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(1, status=429, code="1312")
    await embed_one(zhipu_settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 2 and recorded_sleep.waits[0] >= 0.004


def test_every_documented_code_has_exactly_one_rule() -> None:
    documented = [500, *range(1000, 1005), *range(1110, 1114), 1120, 1121, 1200]
    documented += [*range(1210, 1216), *range(1220, 1223), 1230, 1231, 1234, 1261]
    documented += [*range(1300, 1306), *range(1308, 1314)]
    assert sorted(CODES) == sorted(documented)
    retried = {code for code, rule in CODES.items() if rule.error.retryable}
    assert retried == {500, 1120, 1200, 1230, 1234, 1302, 1303, 1305, 1312}


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        ("1308", ProviderQuotaError, "quota"),
        ("1261", ProviderRejected, "too long"),
        ("1301", ProviderRejected, "safety filter"),
        ("1220", ProviderModelUnavailable, "no permission"),
        ("1304", ProviderQuotaError, "daily call limit"),
        ("1309", ProviderQuotaError, "plan has expired"),
        ("1313", ProviderQuotaError, "fair-use"),
        ("1211", ProviderModelUnavailable, "does not know this model"),
    ],
)
async def test_non_retryable_codes_map_to_their_error(
    fake_zhipu: FakeZhipu,
    zhipu_settings: Settings,
    code: str,
    error: type[Exception],
    words: str,
) -> None:
    fake_zhipu.fail_next(1, status=400, code=code)
    with pytest.raises(error, match=words):
        await embed_one(zhipu_settings)
    assert len(fake_zhipu.requests) == 1


async def test_wrong_key_says_so_and_never_shows_the_key(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    secret = "wrong-id.wrong-secret-value"
    settings = zhipu_settings.model_copy(update={"zhipu_api_key": SecretStr(secret)})
    embedder = ZhipuEmbedder.from_settings(settings)
    with pytest.raises(ProviderAuthError, match="key was rejected; check ZHIPUAI_API_KEY") as info:
        await embedder.embed_query("hello")
    await embedder.aclose()
    assert "1002" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(embedder)
    assert secret not in repr(embedder._http)
    assert len(fake_zhipu.requests) == 1


async def test_key_echoed_by_server_is_redacted(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    body = f'{{"error": {{"code": "1214", "message": "bad token {fake_zhipu.api_key}"}}}}'
    fake_zhipu.fail_next(1, status=400, body=body)
    with pytest.raises(ProviderRejected) as info:
        await embed_one(zhipu_settings)
    assert fake_zhipu.api_key not in str(info.value) and "***" in str(info.value)


async def test_gateway_html_502_retried_then_unavailable(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(10, status=502, body=BAD_GATEWAY, content_type="text/html")
    with pytest.raises(ProviderUnavailable, match="HTTP 502: 502 Bad Gateway nginx"):
        await embed_one(zhipu_settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 4 and len(recorded_sleep.waits) == 3


async def test_gateway_html_502_once_then_success(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.fail_next(1, status=504, body="Gateway Timeout", content_type="text/plain")
    await embed_one(zhipu_settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 2


async def test_malformed_json_in_200_is_retried(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.malformed_json_next = 1
    await embed_one(zhipu_settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 2


async def test_slow_server_times_out_after_retries(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.delay_seconds = 0.5
    settings = zhipu_settings.model_copy(
        update={"zhipu_timeout_seconds": 0.1, "zhipu_max_retries": 2}
    )
    with pytest.raises(
        ProviderTimeout, match=r"did not answer within 0.1 s \(read timeout\).*3 tries"
    ):
        await embed_one(settings, recorded_sleep)
    assert len(fake_zhipu.requests) == 3


async def test_unreachable_server_is_unavailable(
    zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    settings = zhipu_settings.model_copy(
        update={"zhipu_base_url": "http://127.0.0.1:9/api/paas/v4", "zhipu_max_retries": 1}
    )
    with pytest.raises(ProviderUnavailable, match="cannot reach Zhipu"):
        await embed_one(settings, recorded_sleep)
    assert len(recorded_sleep.waits) == 1


def test_missing_key_is_an_auth_error(zhipu_settings: Settings) -> None:
    settings = zhipu_settings.model_copy(update={"zhipu_api_key": None})
    with pytest.raises(ProviderAuthError, match="ZHIPUAI_API_KEY"):
        ZhipuEmbedder.from_settings(settings)
