"""What the answer pipeline produces: typed events, and the final `Answer` they add up to.

`answer_events` yields `SourcesEvent`, `DeltaEvent`..., `CitationsEvent`, `DoneEvent`. Every
surface renders from these records: SSE sends each event's `as_dict()`, the JSON answer, MCP
and the CLI use `Answer`, OpenAI chat builds its chunks from both. `AnswerBuilder` is the one
place events are merged into an `Answer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from indexer.records import StoredChunk, Usage
from service.query.citations import snippet
from service.query.display import display_text
from service.query.gate import GateDecision
from service.query.records import Citation, usage_dict

__all__ = [
    "Answer",
    "AnswerBuilder",
    "AnswerEvent",
    "CitationsEvent",
    "DeltaEvent",
    "DoneEvent",
    "Source",
    "SourcesEvent",
]


@dataclass(frozen=True, slots=True)
class Source:
    """A source as numbered in the prompt (or, when declining, one of the closest)."""

    n: int
    chunk: StoredChunk

    def as_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "n": self.n,
            "chunk_id": c.id,
            "document_id": c.document_id,
            "source": c.source,
            "title": c.title,
            "snippet": snippet(display_text(c)),
        }


@dataclass(frozen=True, slots=True)
class SourcesEvent:
    """First: the sources, the model chosen and why, and the gate's decision."""

    name: ClassVar[str] = "sources"
    model: str
    route: str
    grounded: bool
    sources: tuple[Source, ...]
    gate: GateDecision | None  # None in whole-document mode (nothing to gate)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "route": self.route,
            "grounded": self.grounded,
            "sources": [s.as_dict() for s in self.sources],
            "gate": None if self.gate is None else self.gate.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class DeltaEvent:
    """A piece of the answer text, its citation markers already in the final numbering."""

    name: ClassVar[str] = "delta"
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class CitationsEvent:
    """The whole answer text and the sources its markers cite, `[1]` first."""

    name: ClassVar[str] = "citations"
    answer: str
    citations: tuple[Citation, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "citations": [c.as_dict() for c in self.citations]}


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """Last: how it went."""

    name: ClassVar[str] = "done"
    answer: str
    model: str
    grounded: bool
    finish_reason: str
    warnings: tuple[str, ...]
    timings: dict[str, float]
    usage: tuple[Usage, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "model": self.model,
            "grounded": self.grounded,
            "finish_reason": self.finish_reason,
            "warnings": list(self.warnings),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "usage": [usage_dict(u) for u in self.usage],
        }


AnswerEvent = SourcesEvent | DeltaEvent | CitationsEvent | DoneEvent


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: what the JSON answer, MCP, the CLI and chat completions show."""

    answer: str
    citations: tuple[Citation, ...]
    sources: tuple[Source, ...]
    model: str
    route: str
    grounded: bool
    finish_reason: str
    warnings: tuple[str, ...]
    timings: dict[str, float]
    usage: tuple[Usage, ...]
    gate: GateDecision | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "citations": [c.as_dict() for c in self.citations],
            "sources": [s.as_dict() for s in self.sources],
            "model": self.model,
            "route": self.route,
            "grounded": self.grounded,
            "finish_reason": self.finish_reason,
            "warnings": list(self.warnings),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "usage": [usage_dict(u) for u in self.usage],
            "gate": None if self.gate is None else self.gate.as_dict(),
        }


@dataclass(slots=True)
class AnswerBuilder:
    """Folds answer events into an `Answer`: the one merge every surface uses."""

    sources: SourcesEvent | None = None
    text: list[str] = field(default_factory=list)
    citations: CitationsEvent | None = None
    done: DoneEvent | None = None

    def add(self, event: AnswerEvent) -> None:
        if isinstance(event, SourcesEvent):
            self.sources = event
        elif isinstance(event, DeltaEvent):
            self.text.append(event.text)
        elif isinstance(event, CitationsEvent):
            self.citations = event
        else:
            self.done = event

    @property
    def finished(self) -> bool:
        return self.done is not None

    def answer(self) -> Answer:
        """The merged answer; the stream must have ended with its `done` event."""
        if self.sources is None or self.done is None:
            raise RuntimeError("the answer stream ended before its done event")
        done = self.done
        return Answer(
            answer=done.answer,
            citations=self.citations.citations if self.citations else (),
            sources=self.sources.sources,
            model=done.model,
            route=self.sources.route,
            grounded=done.grounded,
            finish_reason=done.finish_reason,
            warnings=done.warnings,
            timings=done.timings,
            usage=done.usage,
            gate=self.sources.gate,
        )
