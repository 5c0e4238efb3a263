from __future__ import annotations

from congocart.core.errors import CongoError, NotFound


class JobNotFound(NotFound):
    code = "job_not_found"
    default_detail = "No job has this id."


class JobNotDead(CongoError):
    status_code = 409
    code = "job_not_dead"
    default_detail = "Only a dead job can be retried; this one is pending, running or done."
