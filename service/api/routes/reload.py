"""``POST /admin/reload``: load a newly published index version now, rather than at the next poll."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from service.api.deps import AdminDep, StateDep

router = APIRouter(tags=["admin"])


@router.post("/admin/reload", include_in_schema=False)
async def reload(_: AdminDep, state: StateDep) -> dict[str, Any]:
    """Serve the published version: ``reloaded``, ``unchanged`` or ``failed`` (with why; the old version
    keeps serving). Retries a version that failed before."""
    if state.reload is None:
        raise HTTPException(status_code=503, detail="Stride is starting; try again shortly",
                            headers={"Retry-After": "2"})
    outcome = await run_in_threadpool(state.reload, True)
    return asdict(outcome)
