"""/app/api: login, logout, me, users (supervisors list them to assign ledger items; admins add them), taxonomy."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from inference_service.accounts import SESSION_DAYS, AccountsError, LoginThrottled, User
from inference_service.app import schemas as s
from inference_service.app.deps import COOKIE, CtxDep, SessionDep, TaxonomyDep, UserDep, require
from inference_service.app.errors import AppError
from inference_service.ledger import SEVERITY_ZH

router = APIRouter(prefix="/app/api", tags=["app"])

# Scenes an inspection is made in, with the taxonomy domains whose hazards they bring first.
SCENES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("construction", "建筑工地", "Construction site", ("建筑施工", "消防")),
    ("work_at_height", "高处作业", "Work at height", ("建筑施工",)),
    ("hot_work", "动火作业", "Hot work", ("动火作业", "消防")),
    ("residential_ebike", "商住楼/电动自行车", "Residential building / e-bikes", ("电动自行车", "消防")),
    ("industry", "工贸企业", "Industrial and trade enterprise", ("工贸", "消防")),
    ("gas", "燃气场所", "Gas premises", ("城镇燃气", "消防")),
    ("public_venue", "人员密集场所", "Crowded public venue", ("消防",)),
)
SCENE_IDS = frozenset(sc[0] for sc in SCENES)
# inspection scene -> the taxonomy scene its photos are judged in by default (a photo may name another one)
PHOTO_SCENE_OF = {"construction": "construction", "work_at_height": "work_at_height", "hot_work": "hot_work",
                  "industry": "workshop"}  # fmt: skip
SCENE_ZH = {sc[0]: sc[1] for sc in SCENES}


def user_out(u: User) -> s.UserOut:
    return s.UserOut(
        id=u.id, username=u.username, display_name=u.display_name, role=u.role, org=s.Org(id=u.org_id, name=u.org_name)
    )


def _secure(request: Request, configured: bool | None) -> bool:
    if configured is not None:
        return configured
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


@router.post("/login", response_model=s.SessionOut, responses={401: {}, 429: {}})
def login(body: s.LoginIn, request: Request, response: Response, ctx: CtxDep) -> s.SessionOut:
    client = request.client.host if request.client else ""
    try:
        session = ctx.accounts.login(body.username, body.password, client)
    except LoginThrottled as exc:
        raise AppError(
            429,
            "too_many_attempts",
            f"too many failed logins; try again in {exc.retry_after_s} s",
            f"登录失败次数过多，请 {exc.retry_after_s} 秒后再试",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    if session is None:
        raise AppError(401, "bad_credentials", "wrong username or password", "用户名或密码错误")
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=SESSION_DAYS * 86400,
        path="/app",
        httponly=True,
        samesite="strict",
        secure=_secure(request, ctx.settings.app_secure_cookie),
    )
    return s.SessionOut(user=user_out(session.user), csrf_token=session.csrf_token)


@router.post("/logout", status_code=204, response_class=Response)
def logout(session: SessionDep, ctx: CtxDep) -> Response:
    ctx.accounts.logout(session.token)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/app", httponly=True, samesite="strict")
    return response


@router.get("/me", response_model=s.SessionOut, responses={401: {}})
def me(session: SessionDep) -> s.SessionOut:
    return s.SessionOut(user=user_out(session.user), csrf_token=session.csrf_token)


@router.get("/users", response_model=s.UserList)
def list_users(user: UserDep, ctx: CtxDep) -> s.UserList:
    require(user, "supervisor", "listing users")  # supervisors assign ledger items to them
    return s.UserList(items=[user_out(u) for u in ctx.accounts.list_users(user.org_id)])


@router.post("/users", response_model=s.UserOut, status_code=201)
def add_user(body: s.UserIn, user: UserDep, ctx: CtxDep) -> s.UserOut | JSONResponse:
    require(user, "admin", "adding users")
    try:
        return user_out(ctx.accounts.add_user(body.username, body.password, body.role, user.org_id, body.display_name))
    except AccountsError as exc:
        raise AppError(409 if "taken" in str(exc) else 422, "invalid_user", str(exc)) from exc


@router.get("/taxonomy", response_model=s.TaxonomyOut)
def taxonomy(user: UserDep, tax: TaxonomyDep, request: Request, ctx: CtxDep) -> s.TaxonomyOut:
    state = request.app.state.service
    model_classes = state.scanner.detector.card.classes if state.scanner is not None else ()
    detectable = {h.id for h in tax.detectable_hazards(model_classes)}
    days = ctx.ledger.policy.days
    return s.TaxonomyOut(
        version=tax.version,
        scenes=[s.SceneOut(id=i, name_zh=zh, name_en=en, photo_scene=PHOTO_SCENE_OF.get(i)) for i, zh, en, _ in SCENES],
        photo_scenes=[s.SceneOut(id=sc.id, name_zh=sc.zh, name_en=sc.en) for sc in tax.scenes],
        hazards=[
            s.HazardOut(
                id=h.id,
                name_zh=h.name_zh,
                name_en=h.name_en,
                domain=h.domain,
                severity=h.severity,
                legal_basis=h.legal_basis,
                advice_zh=h.advice_zh,
                advice_en=h.advice_en,
                detectable=h.id in detectable,
            )
            for h in tax.hazards
        ],
        severities=[
            s.SeverityOut(id=sev, name_zh=SEVERITY_ZH[sev], deadline_days=int(days.get(sev, 7)))
            for sev in ("critical", "high", "medium", "low")
        ],
    )
