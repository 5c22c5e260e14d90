"""Embedding throughput of ZhipuEmbedder against the fake Zhipu server with 200 ms latency.

Starts `python -m tests.fakes.zhipu_server` in a separate process (the real server is remote,
so its CPU should not compete with the client's), then embeds 16 x 64 x concurrency chunks
at each concurrency and compares with the ideal `concurrency * 64 / latency` chunks/s.

    python scripts/bench_embed.py [--latency 0.2] [--dimensions 1024] [--rounds 16]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
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


async def run(base_url: str, concurrency: int, dimensions: int, rounds: int) -> tuple[float, float]:
    """(chunks per second, client CPU seconds per wall second) for one concurrency."""
    settings = Settings(
        zhipu_api_key=SecretStr(KEY),
        zhipu_base_url=base_url,
        zhipu_max_concurrency=concurrency,
        embed_batch_size=BATCH,
    )
    texts = [
        f"Chunk {i}: retrieval augmented search over documents, paragraph {i % 97}."
        for i in range(rounds * BATCH * concurrency)
    ]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--dimensions", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    args = parser.parse_args()

    port = free_port()
    command = [sys.executable, "-m", "tests.fakes.zhipu_server", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--api-key", KEY, "--delay", str(args.latency)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        base_url = f"http://127.0.0.1:{port}/api/paas/v4"
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
