"""/app/api/stats: hazards by type, severity, unit, inspector and week; rectification; the model in the field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from inference_service.app import schemas as s
from inference_service.app.api_ledger import parse_when
from inference_service.app.deps import CtxDep, TaxonomyDep, UserDep
from inference_service.app.stats import stats

router = APIRouter(prefix="/app/api", tags=["app"])


@router.get("/stats", response_model=s.StatsOut)
def get_stats(
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    from_: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD (local) or ISO date-time")] = None,
    to: Annotated[str | None, Query(description="YYYY-MM-DD inclusive, or ISO date-time exclusive")] = None,
) -> s.StatsOut:
    off = ctx.settings.deadline_utc_offset_hours
    names = {u.id: u.display_name for u in ctx.accounts.list_users(user.org_id)}
    since, until = parse_when(from_, off), parse_when(to, off, end=True)
    return s.StatsOut.model_validate(stats(ctx.db, user.org_id, tax, names, since, until, off))
