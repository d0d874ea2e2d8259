"""Who may do what with a case. Pure: the caller, the case and the queue's view in, a
standing out, or an error with a stable code.

* The clerk of the case's current session: everything but the citizen's rating.
* A supervisor: the cases of their department (the serving clerk's), to read and export.
* The citizen side (a phone's citizen or a booth's device): only the case of the ticket it
  holds now, or, once that session has ended, for ``window_s`` afterwards (to see the
  result and rate) as long as it has not queued again. A booth serves one citizen after
  another under one device identity, so "its own cases" must never mean every case that
  booth ever had. Uploads only while the ticket is live.

Staff are told ``403 not_assigned`` for a case that is not theirs; the citizen side gets
``404 case_not_found`` for any case it may not see, so it learns nothing about others.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from server.case_records import CaseRecord
from server.errors import Forbidden, NotFound
from server.principals import Principal


class Need(StrEnum):
    READ = "read"
    EDIT = "edit"
    UPLOAD = "upload"
    RATE = "rate"
    EXPORT = "export"


Standing = Literal["clerk", "supervisor", "citizen"]
_SUPERVISOR_MAY = frozenset({Need.READ, Need.EXPORT})
_CITIZEN_MAY = frozenset({Need.READ, Need.RATE, Need.UPLOAD})


def case_not_found() -> NotFound:
    return NotFound("没有找到该案件", "no such case", code="case_not_found")


def authorize(principal: Principal, case: CaseRecord, need: Need, *,
              owner_ticket: str | None, now: datetime, window_s: float) -> Standing:
    """``owner_ticket``: the ticket the case's owner holds in the queue now, if any."""
    if principal.is_staff:
        username = principal.subject.removeprefix("clerk:")
        if case.clerk == username:
            if need is Need.RATE:
                raise _role_may_not(need)
            return "clerk"
        if (principal.role == "supervisor" and principal.department is not None
                and principal.department == case.department):
            if need not in _SUPERVISOR_MAY:
                raise _role_may_not(need)
            return "supervisor"
        raise Forbidden("这不是您办理的案件", "the case is another clerk's",
                        code="not_assigned")
    if principal.subject != case.owner or not _within_reach(case, need, owner_ticket, now,
                                                             window_s):
        raise case_not_found()
    if need not in _CITIZEN_MAY:
        raise _role_may_not(need)
    return "citizen"


def _within_reach(case: CaseRecord, need: Need, owner_ticket: str | None, now: datetime,
                  window_s: float) -> bool:
    if owner_ticket is not None:
        return owner_ticket == case.ticket_id
    if need is Need.UPLOAD or case.session_ended_at is None:
        return False
    return (now - case.session_ended_at).total_seconds() <= window_s


def _role_may_not(need: Need) -> Forbidden:
    return Forbidden("无权执行此操作", f"this role may not {need} the case",
                     detail={"need": str(need)})
