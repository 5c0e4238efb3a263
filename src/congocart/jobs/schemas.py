from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from congocart.core.jobs import JobStatus
from congocart.core.schemas import ResponseModel


class JobRead(ResponseModel):
    id: UUID
    kind: str
    status: JobStatus
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    dedupe_key: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
