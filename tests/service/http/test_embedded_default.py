"""The embedded default (MiniLM on ONNX Runtime) in the service: loaded at start-up, never by
paths that do not need it, and never held up by an upload."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.catalog import CollectionSpec
from indexer.index import Index
from indexer.providers.onnx_local import OnnxEmbedder
from indexer.settings import Settings
from service.http.app import create_app
from service.query.engine import Engine
from tests.conftest import Cli

pytestmark = pytest.mark.slow  # loads the real MiniLM model

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "onnxruntime", "sentence_transformers", "transformers")


def minilm_collection(client: TestClient, name: str = "docs") -> None:
    created = client.post("/v1/collections", json={"name": name, "embedder": "local"})
    assert created.status_code == 201, created.text


def test_a_local_collection_takes_only_the_models_own_dimension(
    cli: Cli, settings: Settings
) -> None:
    refused = cli("collections", "create", "wide", "--embedder", "local", "--dimensions", "1024")
    assert refused.exit_code == 2
    assert "produces 384-dimensional vectors, not 1024" in refused.stderr
    assert cli.json("collections", "list") == {"collections": []}
    created = cli.json(
        "collections", "create", "docs", "--embedder", "local", "--dimensions", "384"
    )
    assert created["dimensions"] == 384

    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/v1/collections", json={"name": "wide", "embedder": "local", "dimensions": 1024}
        )
        assert response.status_code == 400
        assert "produces 384-dimensional vectors, not 1024" in response.text
        names = [c["name"] for c in client.get("/v1/collections").json()["collections"]]
    assert names == ["docs"]


def test_server_loads_the_model_at_start_up_and_is_ready_after(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        minilm_collection(client)
    engine = Engine(settings)
    app = create_app(settings, engine=engine)
    with TestClient(app) as client:
        assert engine.models_loaded.wait(120)
        body = client.get("/readyz").json()
        assert body["status"] == "ready"
        assert {"name": "models", "ok": True} in body["checks"]
    assert any(isinstance(e, OnnxEmbedder) for e in engine.embedders._built.values())
    engine.index.close()


def test_readyz_is_503_until_the_models_are_loaded(settings: Settings) -> None:
    engine = Engine(settings)
    client = TestClient(create_app(settings, engine=engine))  # lifespan not run: nothing loads
    response = client.get("/readyz")
    assert response.status_code == 503
    assert {"name": "models", "ok": False, "detail": "loading"} in response.json()["checks"]
    engine.index.close()


def test_readyz_names_a_model_that_cannot_load(settings: Settings, tmp_path: Path) -> None:
    index = Index(settings, writer=True)
    index.catalog.create_collection(
        CollectionSpec("broken", "local", str(tmp_path / "no-such-model"), 384, 200, 1)
    )
    index.close()
    engine = Engine(settings)
    with TestClient(create_app(settings, engine=engine)) as client:
        assert engine.models_loaded.wait(60)
        response = client.get("/readyz")
    assert response.status_code == 503
    models = next(c for c in response.json()["checks"] if c["name"] == "models")
    assert models["ok"] is False
    assert models["detail"].startswith("broken: ")
    engine.index.close()


def test_lexical_search_status_documents_and_keys_load_no_model(
    cli: Cli, docs: Path, settings: Settings
) -> None:
    assert cli("collections", "create", "docs", "--embedder", "local").exit_code == 0
    assert cli("ingest", docs, "--collection", "docs").exit_code == 0
    commands = [
        ["search", "backup", "--collection", "docs", "--mode", "lexical", "--json"],
        ["status", "--json"],
        ["documents", "--collection", "docs", "--json"],
        ["keys", "list"],
    ]
    data_dir = str(settings.data_dir)
    code = (
        "import json, sys\n"
        "from service.cli import build_cli\n"
        f"for argv in {commands!r}:\n"
        f"    build_cli()(['--data-dir', {data_dir!r}, *argv], standalone_mode=False)\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert '"source"' in result.stdout  # the lexical search found something
    assert found == []


def test_dense_query_answers_while_a_large_upload_embeds(settings: Settings) -> None:
    paragraphs = [
        f"Section {i}. The maintenance window for cluster {i} opens at {i % 24:02d}:00 UTC and "
        f"lasts two hours; operators page the on-call engineer for region {i % 7} first."
        for i in range(2000)
    ]  # ~25 sub-batches: the upload outlasts a query by far, even on a loaded machine
    engine = Engine(settings)
    with TestClient(create_app(settings, engine=engine)) as client:
        minilm_collection(client)
        client.post(
            "/v1/collections/docs/documents",
            json={"source": "kb://seed", "text": "Backups run nightly at 02:00."},
        )
        embedder = next(e for e in engine.embedders._built.values() if isinstance(e, OnnxEmbedder))
        uploaded: dict[str, float] = {}

        def upload() -> None:
            body = {"source": "kb://big", "text": "\n\n".join(paragraphs)}
            response = client.post("/v1/collections/docs/documents", json=body)
            assert response.status_code == 201, response.text
            uploaded["done"] = time.monotonic()

        worker = threading.Thread(target=upload)
        worker.start()
        while embedder.ingest_steps == 0 and worker.is_alive():
            time.sleep(0.01)  # wait until the upload is embedding
        asked = time.monotonic()
        response = client.post(
            "/v1/search",
            json={"query": "when do backups run?", "collection": "docs", "mode": "dense"},
        )
        answered = time.monotonic()
        worker.join()
    assert response.status_code == 200
    assert response.json()["results"][0]["source"] == "kb://seed"
    # The query did not wait for the upload to finish embedding.
    assert answered < uploaded["done"]
    assert answered - asked < (uploaded["done"] - asked) / 2
    engine.index.close()
