"""Case files: the status machine, the materials checklist and case numbers. Pure rules.

A case is opened when a clerk accepts the ticket's offer (``draft``): one case per ticket,
so a ticket put back in the queue after a lost clerk continues the same case with the
next clerk. The first change by anyone (a document, an edit, a waiver) starts the work
(``in_progress``); the clerk then ends it::

    draft -> in_progress -> completed | rejected | withdrawn
    draft -> withdrawn

:func:`transition` is the one place that validates a status change. ``completed`` needs
every required slot of the checklist filled by a document or waived with a reason;
``rejected`` needs a reason (the outcome text).

The checklist is copied from the matter's materials when the case opens, so a later edit
of the catalogue never changes an open case. A matter may list one kind twice (two
"other" papers): slots are keyed ``other``, ``other_2``, ... in catalogue order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from server.catalogue_records import Matter
from server.errors import BadRequest, Conflict, InvalidTransition
from server.opening_hours import to_china_time


class CaseStatus(StrEnum):
    DRAFT = "draft"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


_C = CaseStatus
ALLOWED: dict[CaseStatus, frozenset[CaseStatus]] = {
    _C.DRAFT: frozenset({_C.IN_PROGRESS, _C.WITHDRAWN}),
    _C.IN_PROGRESS: frozenset({_C.COMPLETED, _C.REJECTED, _C.WITHDRAWN}),
    _C.COMPLETED: frozenset(),
    _C.REJECTED: frozenset(),
    _C.WITHDRAWN: frozenset(),
}
OPEN_STATUSES = frozenset({_C.DRAFT, _C.IN_PROGRESS})
CLOSED_STATUSES = frozenset(CaseStatus) - OPEN_STATUSES


@dataclass(frozen=True)
class SlotSpec:
    """One line of the checklist, as copied from the catalogue."""

    key: str
    position: int
    kind: str
    required: bool
    name_zh: str
    name_en: str
    aspect_ratio: float | None


@dataclass(frozen=True)
class SlotState:
    spec: SlotSpec
    documents: int
    waived_reason: str | None

    @property
    def state(self) -> str:
        """``filled`` (at least one document), ``waived`` or ``empty``."""
        if self.documents:
            return "filled"
        return "waived" if self.waived_reason is not None else "empty"

    @property
    def blocks_completion(self) -> bool:
        return self.spec.required and self.state == "empty"


def slots_for(matter: Matter) -> list[SlotSpec]:
    seen: dict[str, int] = {}
    slots = []
    for position, material in enumerate(matter.materials):
        kind = str(material.kind)
        seen[kind] = seen.get(kind, 0) + 1
        key = kind if seen[kind] == 1 else f"{kind}_{seen[kind]}"
        slots.append(SlotSpec(key, position, kind, material.required, material.name_zh,
                              material.name_en, material.aspect_ratio))
    return slots


def checklist(specs: Iterable[SlotSpec], documents: Mapping[str, int],
              waivers: Mapping[str, str]) -> list[SlotState]:
    """Slot states from the number of documents per slot key and the waiver reasons."""
    return [SlotState(s, documents.get(s.key, 0), waivers.get(s.key))
            for s in sorted(specs, key=lambda s: s.position)]


def transition(current: CaseStatus, requested: CaseStatus, *,
               slots: Sequence[SlotState] = (), reason: str | None = None) -> CaseStatus:
    """Validate a status change; returns ``requested`` or raises naming the current state."""
    if requested not in ALLOWED[current]:
        raise InvalidTransition(
            f"案件状态不能从 {current} 变为 {requested}",
            f"a case cannot go from {current} to {requested}",
            detail={"current": str(current), "requested": str(requested)},
        )
    if requested is _C.COMPLETED:
        missing = [s.spec.key for s in slots if s.blocks_completion]
        if missing:
            raise Conflict("还有必需材料未收齐（可收取或注明免交理由）",
                           "required materials are missing: capture them or waive them",
                           code="checklist_incomplete", detail={"missing": missing})
    if requested is _C.REJECTED and not (reason and reason.strip()):
        raise BadRequest("不予受理须说明理由", "a rejection needs a reason",
                         code="reason_required", detail={"field": "outcome"})
    return requested


def started(current: CaseStatus) -> CaseStatus:
    """The status after a change to the case's content: a draft starts, a case in
    progress stays, a closed case refuses the change."""
    require_open(current)
    return transition(current, _C.IN_PROGRESS) if current is _C.DRAFT else current


def require_open(status: CaseStatus) -> None:
    if status not in OPEN_STATUSES:
        raise Conflict("案件已办结，不能再修改", f"the case is {status} and can no longer change",
                       code="case_closed", detail={"status": str(status)})


def number_scope(prefix: str, at: datetime) -> str:
    """Case numbers restart every year (China time): ``DY-2026``."""
    return f"{prefix}-{to_china_time(at).year}"


def format_number(scope: str, sequence: int) -> str:
    return f"{scope}-{sequence:06d}"


def slot_view(slot: SlotState) -> dict[str, Any]:
    spec = slot.spec
    return {"key": spec.key, "kind": spec.kind, "required": spec.required,
            "name_zh": spec.name_zh, "name_en": spec.name_en, "state": slot.state,
            "documents": slot.documents, "waived_reason": slot.waived_reason}


def find_slot(specs: Iterable[SlotSpec], key: str) -> SlotSpec:
    for spec in specs:
        if spec.key == key:
            return spec
    raise BadRequest("没有该材料项", f"the case has no material slot {key!r}",
                     code="slot_unknown", detail={"slot": key})
