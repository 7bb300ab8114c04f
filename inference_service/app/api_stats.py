"""/app/api/ledger: the hazard ledger (隐患台账). Filled in below."""

from fastapi import APIRouter

router = APIRouter(prefix="/app/api", tags=["app"])
