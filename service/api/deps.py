"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from service.engine import Engine


def get_engine(request: Request) -> Engine:
    state = request.app.state.stride
    if state.engine is None:
        detail = f"Stride is not ready: {state.error}" if state.error else "Stride is starting; try again shortly"
        raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "2"})
    return state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]
