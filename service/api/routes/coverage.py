"""The content-coverage report, for admins only (``X-Admin-Key``): ``GET /coverage`` as HTML, the gap clusters
as JSON and CSV for planning tools, and marking a cluster planned or written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi.responses import HTMLResponse

from service.api.deps import AdminDep, EngineDep, StateDep
from service.api.schemas import ErrorBody, GapMarkRequest, GapMarkResponse, error_responses
from service.coverage.gap_export import gaps_csv
from service.coverage.gap_report import GapReport
from service.coverage.marks import UnknownCluster, set_mark

router = APIRouter(tags=["admin"])

# Admin-only answers holding users' questions: never stored by a shared cache.
PRIVATE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong X-Admin-Key header."},
    404: {"model": ErrorBody, "description": "Admin views are disabled (no STRIDE_ADMIN_API_KEY), or no such cluster."},
}
ClusterId = Annotated[str, Path(min_length=1, max_length=80, description="An id from GET /coverage/gaps.json.")]


@router.get("/coverage", response_class=HTMLResponse, include_in_schema=False)
def coverage(_: AdminDep, engine: EngineDep, state: StateDep) -> HTMLResponse:
    """The same view as ``stride coverage`` writes to report.html, from the live query log; rebuilt only
    when the index version, the log or the marks have changed since the last view. A plain ``def``: FastAPI
    runs it in a worker thread, so building does not block the event loop."""
    return HTMLResponse(state.coverage.html(engine, state.feedback, state.settings.data_dir), headers=PRIVATE)


@router.get("/coverage/gaps.json", response_model=GapReport, responses={**ADMIN_ERRORS, **error_responses(503)})
def gaps_json(_: AdminDep, engine: EngineDep, state: StateDep, response: Response) -> GapReport:
    """The gaps report: the clusters to write about, ranked by recent asks, with their questions, trend,
    nearest article section and mark; the off-topic and abuse questions; the counts per class."""
    response.headers.update(PRIVATE)
    return state.coverage.gaps(engine, state.feedback, state.settings.data_dir)


@router.get("/coverage/gaps.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "One row per question of each cluster to write about, with its cluster's columns."},
    **ADMIN_ERRORS, **error_responses(503)})
def gaps_csv_route(_: AdminDep, engine: EngineDep, state: StateDep) -> Response:
    report = state.coverage.gaps(engine, state.feedback, state.settings.data_dir)
    return Response(gaps_csv(report), media_type="text/csv; charset=utf-8",
                    headers={**PRIVATE, "Content-Disposition": 'attachment; filename="gaps.csv"'})


@router.post("/coverage/gaps/{cluster_id}/mark", response_model=GapMarkResponse,
             responses={**ADMIN_ERRORS, **error_responses(400, 413, 422, 503)})
def mark_gap(_: AdminDep, cluster_id: ClusterId, req: GapMarkRequest, engine: EngineDep,
             state: StateDep) -> GapMarkResponse:
    """Mark a cluster "planned" or "written" (with an optional note), or "open" to remove the mark. After
    the next ingest, a cluster marked written shows whether its questions are now answered."""
    version = engine.snapshot.version
    try:
        mark = set_mark(state.settings.data_dir, cluster_id, req.status, req.note, version, datetime.now(UTC))
    except UnknownCluster as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    return GapMarkResponse(cluster_id=cluster_id, status=req.status, note=mark.note if mark else None,
                           marked_at=mark.marked_at if mark else None, index_version=version)
