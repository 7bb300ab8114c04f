"""/app/api: login, logout, me (and its password), users (supervisors list them to assign ledger items; admins add,
disable and reset them), taxonomy."""

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
    org = s.Org(id=u.org_id, name=u.org_name)
    return s.UserOut(id=u.id, username=u.username, display_name=u.display_name, role=u.role, org=org, active=u.active)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _throttled(exc: LoginThrottled) -> AppError:
    return AppError(
        429,
        "too_many_attempts",
        f"too many wrong passwords; try again in {exc.retry_after_s} s",
        f"密码错误次数过多，请 {_wait_zh(exc.retry_after_s)}后再试",
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def _wait_zh(seconds: int) -> str:
    return f"{seconds} 秒" if seconds < 60 else f"{-(-seconds // 60)} 分钟"


def _secure(request: Request, configured: bool | None) -> bool:
    if configured is not None:
        return configured
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


@router.post("/login", response_model=s.SessionOut, responses={401: {}, 429: {}})
def login(body: s.LoginIn, request: Request, response: Response, ctx: CtxDep) -> s.SessionOut:
    try:
        session = ctx.accounts.login(body.username, body.password, _client(request))
    except LoginThrottled as exc:
        raise _throttled(exc) from exc
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


@router.post("/me/password", status_code=204, response_class=Response, responses={403: {}, 429: {}})
def change_password(body: s.PasswordIn, session: SessionDep, request: Request, ctx: CtxDep) -> Response:
    """A new password for the logged-in user; their other sessions (other phones) end, this one stays."""
    try:
        ok = ctx.accounts.verify(session.user.username, body.current_password, _client(request)) == session.user.id
    except LoginThrottled as exc:
        raise _throttled(exc) from exc
    if not ok:
        raise AppError(403, "wrong_password", "the current password is wrong", "当前密码不正确")
    try:
        ctx.accounts.set_password(session.user.id, body.new_password, keep_session=session.token)
    except AccountsError as exc:
        raise AppError(422, "invalid_password", str(exc), "新密码不符合要求（至少 8 个字符）") from exc
    return Response(status_code=204)


@router.get("/users", response_model=s.UserList)
def list_users(user: UserDep, ctx: CtxDep, inactive: bool = False) -> s.UserList:
    """The organisation's users (supervisors assign ledger items to them); ``inactive=true`` (admins): the disabled
    ones too."""
    require(user, "supervisor", "listing users")
    if inactive:
        require(user, "admin", "listing disabled users")
    return s.UserList(items=[user_out(u) for u in ctx.accounts.list_users(user.org_id, inactive=inactive)])


@router.post("/users", response_model=s.UserOut, status_code=201)
def add_user(body: s.UserIn, user: UserDep, ctx: CtxDep) -> s.UserOut | JSONResponse:
    require(user, "admin", "adding users")
    try:
        return user_out(ctx.accounts.add_user(body.username, body.password, body.role, user.org_id, body.display_name))
    except AccountsError as exc:
        raise AppError(409 if "not available" in str(exc) else 422, "invalid_user", str(exc)) from exc


@router.patch("/users/{user_id}", response_model=s.UserOut)
def change_user(user_id: str, body: s.UserChange, user: UserDep, ctx: CtxDep) -> s.UserOut:
    """An admin disables or enables a user of the organisation, or sets a new password; either ends the user's
    sessions at once (a lost phone, a leaked password, someone who left)."""
    require(user, "admin", "changing users")
    target = next((u for u in ctx.accounts.list_users(user.org_id, inactive=True) if u.id == user_id), None)
    if target is None:
        raise AppError(404, "not_found", "no such user in your organisation", "本单位没有该用户")
    if target.id == user.id and body.active is False:
        raise AppError(422, "validation_error", "you cannot disable yourself", "不能停用自己的账号")
    if body.password is not None:
        ctx.accounts.set_password(target.id, body.password)
    if body.active is not None:
        ctx.accounts.set_active(target.id, body.active)
    changed = ctx.accounts.find_user(target.username)
    assert changed is not None
    return user_out(changed)


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
