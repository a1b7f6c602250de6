from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from broadcast.areas import service
from broadcast.deps import SessionDep

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


class AreaOut(BaseModel):
    code: str
    name: str
    parent: str | None
    postcodes: list[str]


@router.get("", response_model=list[AreaOut])
def list_areas(session: SessionDep):
    return service.all_areas(session)
