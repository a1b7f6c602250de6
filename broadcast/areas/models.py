from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class Area(SQLModel, table=True):
    __tablename__ = "areas"

    code: str = Field(primary_key=True, max_length=60)
    name: str = Field(max_length=120)
    parent: str | None = Field(default=None, foreign_key="areas.code", max_length=60)
    postcodes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    geojson: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
