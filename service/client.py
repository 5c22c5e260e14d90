"""A small typed Python client for a ragsearch server, over httpx.

    from service.client import RagsearchClient

    with RagsearchClient("http://127.0.0.1:8000", api_key="rsk_...") as rag:
        for hit in rag.search("how are logs rotated?", "docs").results:
            print(hit.score, hit.scores, hit.source)
        answer = rag.answer("How long are logs kept?", "docs")
        for event in rag.stream_answer("How long are logs kept?", "docs"):
            if event.name == "delta":
                print(event.data["text"], end="")
        job = rag.upload("docs", ["handbook.pdf"], run_async=True)
        print(rag.wait_for_job(job.id).report)

It needs only httpx (no FastAPI, no models). Every server error becomes a `ClientError`
carrying the server's status, stable `code`, message and request id. Records keep the whole
response in `raw`, so fields a newer server adds are not lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "Answer",
    "AnswerEvent",
    "Citation",
    "ClientError",
    "IngestReport",
    "Job",
    "RagsearchClient",
    "SearchHit",
    "SearchResponse",
]


class ClientError(Exception):
    """The server refused the request: its HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk_id: int
    document_id: int
    source: str
    title: str | None
    text: str
    score: float
    scores: dict[str, float]
    heading_path: tuple[str, ...]
    page: int | None
    span: tuple[int, int] | None
    metadata: dict[str, Any]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SearchHit:
        span = d.get("span")
        return cls(
            chunk_id=int(d["chunk_id"]),
            document_id=int(d["document_id"]),
            source=str(d["source"]),
            title=d.get("title"),
            text=str(d.get("text", "")),
            score=float(d.get("score", 0.0)),
            scores={k: float(v) for k, v in (d.get("scores") or {}).items()},
            heading_path=tuple(d.get("heading_path") or ()),
            page=d.get("page"),
            span=(int(span["start"]), int(span["end"])) if span else None,
            metadata=dict(d.get("metadata") or {}),
        )


@dataclass(frozen=True, slots=True)
class SearchResponse:
    results: tuple[SearchHit, ...]
    timings: dict[str, float]
    warnings: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SearchResponse:
        return cls(
            results=tuple(SearchHit.from_json(r) for r in d.get("results", [])),
            timings={k: float(v) for k, v in (d.get("timings") or {}).items()},
            warnings=tuple(d.get("warnings") or ()),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    chunk_id: int
    document_id: int
    source: str
    title: str | None
    snippet: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Citation:
        return cls(
            n=int(d["n"]),
            chunk_id=int(d["chunk_id"]),
            document_id=int(d["document_id"]),
            source=str(d["source"]),
            title=d.get("title"),
            snippet=str(d.get("snippet", "")),
        )


@dataclass(frozen=True, slots=True)
class Answer:
    answer: str
    citations: tuple[Citation, ...]
    model: str
    route: str | None
    grounded: bool
    timings: dict[str, float]
    warnings: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Answer:
        return cls(
            answer=str(d.get("answer", "")),
            citations=tuple(Citation.from_json(c) for c in d.get("citations", [])),
            model=str(d.get("model", "")),
            route=d.get("route"),
            grounded=bool(d.get("grounded", False)),
            timings={k: float(v) for k, v in (d.get("timings") or {}).items()},
            warnings=tuple(d.get("warnings") or ()),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    """One streamed event: `sources`, `delta` (`data["text"]`), `citations`, `done`."""

    name: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IngestReport:
    added: int
    updated: int
    unchanged: int
    chunks: int
    failed: tuple[tuple[str, str], ...]  # (source, reason)
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> IngestReport:
        return cls(
            added=int(d.get("added", 0)),
            updated=int(d.get("updated", 0)),
            unchanged=int(d.get("unchanged", 0)),
            chunks=int(d.get("chunks", 0)),
            failed=tuple((f["source"], f["error"]) for f in d.get("failed", [])),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    collection: str
    status: str
    progress: dict[str, Any]
    report: IngestReport | None
    error: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "interrupted")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Job:
        report = d.get("report")
        return cls(
            id=int(d["id"]),
            collection=str(d["collection"]),
            status=str(d["status"]),
            progress=dict(d.get("progress") or {}),
            report=IngestReport.from_json(report) if report else None,
            error=d.get("error"),
            raw=d,
        )


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name, data = "message", ""
    for line in lines:
        if not line:
            if data:
                yield name, json.loads(data)
            name, data = "message", ""
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()


class RagsearchClient:
    """Search, answer (JSON or streamed), collections, uploads, URL ingests and jobs."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RagsearchClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        self._check(response)
        return response.json()

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.is_success:
            return
        response.read()
        try:
            body = response.json()
            error = body["error"]
            raise ClientError(
                response.status_code, error["code"], error["message"], body.get("request_id")
            )
        except (ValueError, KeyError, TypeError):
            raise ClientError(
                response.status_code, "http_error", response.text[:500], None
            ) from None

    # --- search and answer -----------------------------------------------------------------

    def search(
        self,
        query: str,
        collection: str,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        filter: dict[str, Any] | None = None,
        rerank: bool | None = None,
    ) -> SearchResponse:
        body = {"query": query, "collection": collection, "top_k": top_k, "mode": mode}
        if filter is not None:
            body["filter"] = filter
        if rerank is not None:
            body["rerank"] = rerank
        return SearchResponse.from_json(self._json("POST", "/v1/search", json=body))

    def _answer_body(self, query: str, collection: str, options: dict[str, Any]) -> dict[str, Any]:
        body = {"query": query, "collection": collection}
        body.update({k: v for k, v in options.items() if v is not None})
        return body

    def answer(
        self,
        query: str,
        collection: str,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        filter: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> Answer:
        options = {"top_k": top_k, "mode": mode, "filter": filter, "model": model}
        body = self._answer_body(query, collection, options)
        return Answer.from_json(self._json("POST", "/v1/answer", json=body))

    def stream_answer(
        self,
        query: str,
        collection: str,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        filter: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> Iterator[AnswerEvent]:
        """The answer as it is written: `sources`, `delta`..., `citations`, `done`.

        An `error` event mid-stream raises `ClientError` with the server's code.
        """
        options = {"top_k": top_k, "mode": mode, "filter": filter, "model": model}
        body = {**self._answer_body(query, collection, options), "stream": True}
        with self._http.stream("POST", "/v1/answer", json=body) as response:
            self._check(response)
            for name, data in _sse(response.iter_lines()):
                if name == "error":
                    error = data.get("error", {})
                    code, message = error.get("code", "error"), error.get("message", "")
                    raise ClientError(200, code, message, data.get("request_id"))
                yield AnswerEvent(name, data)

    # --- collections and documents ---------------------------------------------------------

    def collections(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/v1/collections")["collections"]
        return found

    def create_collection(self, name: str, **options: Any) -> dict[str, Any]:
        """Options as in `POST /v1/collections`: embedder, model, dimensions, chunk_tokens..."""
        created: dict[str, Any] = self._json(
            "POST", "/v1/collections", json={"name": name, **options}
        )
        return created

    def documents(self, collection: str, *, q: str = "", limit: int = 100) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"q": q} if q else {})}
        path = f"/v1/collections/{collection}/documents"
        found: list[dict[str, Any]] = self._json("GET", path, params=params)["documents"]
        return found

    # --- ingestion -------------------------------------------------------------------------

    def upload(
        self,
        collection: str,
        paths: Sequence[str | Path],
        *,
        metadata: dict[str, Any] | None = None,
        run_async: bool = False,
    ) -> IngestReport | Job:
        """Upload files; the report, or with `run_async` the queued `Job`."""
        files = [("files", (Path(p).name, Path(p).read_bytes())) for p in paths]
        data = {"async": "true"} if run_async else {}
        if metadata:
            data["metadata"] = json.dumps(metadata)
        path = f"/v1/collections/{collection}/documents"
        return self._ingested(self._json("POST", path, files=files, data=data))

    def ingest_text(
        self, collection: str, source: str, text: str, *, metadata: dict[str, Any] | None = None
    ) -> IngestReport:
        body = {"source": source, "text": text, "metadata": metadata or {}}
        result = self._json("POST", f"/v1/collections/{collection}/documents", json=body)
        return IngestReport.from_json(result)

    def ingest_url(
        self,
        collection: str,
        url: str,
        *,
        metadata: dict[str, Any] | None = None,
        run_async: bool = False,
    ) -> IngestReport | Job:
        body = {"url": url, "metadata": metadata or {}, "async": run_async}
        return self._ingested(
            self._json("POST", f"/v1/collections/{collection}/documents", json=body)
        )

    @staticmethod
    def _ingested(body: dict[str, Any]) -> IngestReport | Job:
        if "job" in body:
            return Job.from_json(body["job"])
        return IngestReport.from_json(body)

    def job(self, job_id: int) -> Job:
        return Job.from_json(self._json("GET", f"/v1/jobs/{job_id}"))

    def job_events(self, job_id: int) -> Iterator[Job]:
        """The job each time it changes (server-sent events), ending with it finished."""
        with self._http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=None) as response:
            self._check(response)
            for _name, data in _sse(response.iter_lines()):
                yield Job.from_json(data)

    def wait_for_job(self, job_id: int) -> Job:
        """Follow the job's event stream until it finishes; returns it finished."""
        last = self.job(job_id)
        for last in self.job_events(job_id):
            if last.finished:
                break
        return last

    def resume_job(self, job_id: int) -> Job:
        return Job.from_json(self._json("POST", f"/v1/jobs/{job_id}/resume")["job"])
