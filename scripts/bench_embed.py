"""Embedding throughput of ZhipuEmbedder against the fake Zhipu server with 200 ms latency.

Starts `python -m tests.fakes.zhipu_server` in a separate process (the real server is remote,
so its CPU should not compete with the client's), then embeds 16 x 64 x concurrency chunks
at each concurrency and compares with the ideal `concurrency * 64 / latency` chunks/s.

`--compare` measures, in the same run and interleaved, the token-bounded batches (the
`zhipu_embed_batch_tokens` default) against count-only batches (the behaviour before it),
on the short chunks above and on ~500-token chunks (`chunk_tokens` default 512). The fake then
accepts any array size, so the old behaviour is timed as it ran before, not refused.

    python scripts/bench_embed.py [--latency 0.2] [--dimensions 1024] [--rounds 16]
    python scripts/bench_embed.py --compare --concurrency 8 --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from indexer.providers.zhipu import ZhipuEmbedder
from indexer.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-id.bench-secret"
BATCH = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"fake Zhipu server did not start on port {port}")


def short_text(i: int) -> str:
    return f"Chunk {i}: retrieval augmented search over documents, paragraph {i % 97}."


def long_text(i: int) -> str:  # ~495 estimated tokens, under the 512-token chunk default
    return f"Chunk {i}: " + "retrieval augmented search " * 55


async def run(
    base_url: str,
    concurrency: int,
    dimensions: int,
    rounds: int,
    text: Callable[[int], str] = short_text,
    batch_tokens: int | None = None,
) -> tuple[float, float]:
    """(chunks per second, client CPU seconds per wall second) for one concurrency;
    `batch_tokens` None is the setting's default."""
    settings = Settings(
        zhipu_api_key=SecretStr(KEY),
        zhipu_base_url=base_url,
        zhipu_max_concurrency=concurrency,
        embed_batch_size=BATCH,
    )
    if batch_tokens is not None:
        settings = settings.model_copy(update={"zhipu_embed_batch_tokens": batch_tokens})
    texts = [text(i) for i in range(rounds * BATCH * concurrency)]
    embedder = ZhipuEmbedder.from_settings(settings, dimensions=dimensions)
    try:
        await embedder.embed_documents(texts[:BATCH])  # warm the connection pool
        start, cpu_start = time.perf_counter(), time.process_time()
        result = await embedder.embed_documents(texts)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    finally:
        await embedder.aclose()
    assert result.vectors.shape == (len(texts), dimensions)
    return len(texts) / seconds, cpu / seconds


def compare(base_url: str, concurrency: int, dimensions: int, rounds: int) -> None:
    """Token-bounded (default) against count-only batches, interleaved, best of 2 each."""
    print(f"concurrency {concurrency}, {rounds * BATCH * concurrency} chunks per measurement")
    print(f"{'chunks':>7} {'batches':>20} {'chunks/s':>9} {'vs count-only':>14}")
    for name, text in (("short", short_text), ("~500 tok", long_text)):
        rates: dict[str, float] = {"count-only": 0.0, "token-bounded": 0.0}
        for _ in range(2):
            for label, tokens in (("count-only", 10**9), ("token-bounded", None)):
                rate, _ = asyncio.run(run(base_url, concurrency, dimensions, rounds, text, tokens))
                rates[label] = max(rates[label], rate)
        for label, rate in rates.items():
            print(f"{name:>7} {label:>20} {rate:>9.0f} {rate / rates['count-only']:>14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--dimensions", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--compare", action="store_true", help="token-bounded vs count-only")
    args = parser.parse_args()

    port = free_port()
    command = [sys.executable, "-m", "tests.fakes.zhipu_server", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--api-key", KEY, "--delay", str(args.latency), "--array-tokens", "10000000"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        base_url = f"http://127.0.0.1:{port}/api/paas/v4"
        if args.compare:
            for concurrency in args.concurrency:
                compare(base_url, concurrency, args.dimensions, args.rounds)
            return
        print(f"latency {args.latency * 1000:.0f} ms, {args.dimensions} dims, batch {BATCH}")
        print(
            f"{'concurrency':>11} {'chunks':>7} {'chunks/s':>9} {'ideal':>7} {'% ideal':>8}"
            f" {'client CPU':>10}"
        )
        for concurrency in args.concurrency:
            rate, cpu = asyncio.run(run(base_url, concurrency, args.dimensions, args.rounds))
            ideal = concurrency * BATCH / args.latency
            chunks = args.rounds * BATCH * concurrency
            print(
                f"{concurrency:>11} {chunks:>7} {rate:>9.0f} {ideal:>7.0f} {rate / ideal:>8.0%}"
                f" {cpu:>10.0%}"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
