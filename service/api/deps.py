"""Typed dependencies shared by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from service.answering.engine import Engine
from service.api.state import AppState
from service.feedback.store import FeedbackStore


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.stride
    return state


def get_engine(request: Request) -> Engine:
    state = get_state(request)
    if state.engine is None:
        detail = f"Stride is not ready: {state.error}" if state.error else "Stride is starting; try again shortly"
        raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "2"})
    return state.engine


def get_feedback(request: Request) -> FeedbackStore:
    store = get_state(request).feedback
    if store is None:
        raise HTTPException(status_code=503, detail="feedback is not being stored on this server")
    return store


def require_admin(request: Request, x_admin_key: Annotated[str | None, Header()] = None) -> None:
    """404 when no key is configured (the admin views do not exist on this server), 401 on a missing or
    wrong key; compared in constant time so the key cannot be guessed byte by byte from timings."""
    expected = get_state(request).settings.admin_api_key
    if not expected:
        raise HTTPException(status_code=404, detail="admin views are disabled: set STRIDE_ADMIN_API_KEY")
    if not x_admin_key or not secrets.compare_digest(x_admin_key.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong X-Admin-Key header")


StateDep = Annotated[AppState, Depends(get_state)]
EngineDep = Annotated[Engine, Depends(get_engine)]
FeedbackDep = Annotated[FeedbackStore, Depends(get_feedback)]
# Declare before EngineDep in a route: FastAPI resolves dependencies in order, so a caller without
# the key gets 401/404 and learns nothing about whether the engine is loaded.
AdminDep = Annotated[None, Depends(require_admin)]
