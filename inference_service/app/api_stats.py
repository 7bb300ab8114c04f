"""/app/api/stats (every table) and /app/api/stats/{table}[.csv|.xlsx] (one), behind the app's login.

Tables: hazards by type, severity, domain, unit, inspector, scene, week and month; rectification; critical
hazards per 1,000 inspections per unit type; the model in the field per class and per model version, and what
to teach next. ``from``/``to`` as for the ledger; ``scene`` keeps the inspections of one scene (unit type).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from inference_service.app import schemas as s
from inference_service.app.api_ledger import parse_when
from inference_service.app.deps import CtxDep, TaxonomyDep, UserDep
from inference_service.app.errors import AppError
from inference_service.app.stats import StatsQuery, stats, table, table_names
from inference_service.app.stats_export import to_csv, to_xlsx

router = APIRouter(prefix="/app/api", tags=["app"])

FromQ = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD (local) or ISO date-time")]
ToQ = Annotated[str | None, Query(description="YYYY-MM-DD inclusive, or ISO date-time exclusive")]
SceneQ = Annotated[str | None, Query(description="only inspections of this scene (unit type)")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _query(user: UserDep, ctx: CtxDep, tax: TaxonomyDep, from_: str | None, to: str | None,
           scene: str | None) -> StatsQuery:  # fmt: skip
    off = ctx.settings.deadline_utc_offset_hours
    names = {u.id: u.display_name for u in ctx.accounts.list_users(user.org_id)}
    since, until = parse_when(from_, off), parse_when(to, off, end=True)
    return StatsQuery(ctx.db, user.org_id, tax, names, since, until, off, scene=scene or None)


@router.get("/stats", response_model=s.StatsOut)
def get_stats(
    user: UserDep, ctx: CtxDep, tax: TaxonomyDep, from_: FromQ = None, to: ToQ = None, scene: SceneQ = None
) -> s.StatsOut:
    q = _query(user, ctx, tax, from_, to, scene)
    out = s.StatsOut.model_validate(stats(q))
    out.reports = ctx.reports.sent_between(user.org_id, q.since, q.until)  # a unit type does not apply to them
    return out


@router.get("/stats/{name}", response_model=None)
def get_table(
    name: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep, from_: FromQ = None, to: ToQ = None, scene: SceneQ = None
) -> Any:
    """One table as JSON ``{"table": name, "rows": …}``, or ``NAME.csv`` / ``NAME.xlsx`` to download."""
    base, _, fmt = name.partition(".")
    if base not in table_names() or fmt not in ("", "csv", "xlsx"):
        raise AppError(404, "not_found", f"no statistics table {name!r}; tables: {', '.join(table_names())} "
                       "(add .csv or .xlsx to download)", f"没有统计表 {name!r}")  # fmt: skip
    data = table(_query(user, ctx, tax, from_, to, scene), base)
    if fmt == "":
        return {"table": base, "rows": data}
    disposition = {"Content-Disposition": f'attachment; filename="hazardscan-{base}.{fmt}"'}
    if fmt == "csv":
        return Response(to_csv(data), media_type="text/csv; charset=utf-8", headers=disposition)
    return Response(to_xlsx(data, base), media_type=XLSX, headers=disposition)
