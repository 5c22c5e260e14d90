"""The query routes' dependencies run on the event loop: FastAPI runs a plain `def`
dependency in its thread pool, a thread trip per dependency per request (BENCHMARKS.md)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from service.http import openai_api
from service.http.routes import search


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from calls(sub)


def is_coroutine(call: Callable[..., Any]) -> bool:
    target = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
    return inspect.iscoroutinefunction(target)


@pytest.mark.parametrize("router", [search.router, openai_api.router], ids=["search", "openai"])
def test_query_route_dependencies_are_coroutines(router: APIRouter) -> None:
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert routes
    for route in routes:
        found = list(calls(route.dependant))
        assert found, route.path  # the engine, the caller, ... at the least
        blocking = [getattr(c, "__name__", repr(c)) for c in found if not is_coroutine(c)]
        assert not blocking, f"{route.path}: {blocking} would each take a thread trip"
