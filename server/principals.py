"""Who is calling: the authenticated identity every route and event checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["kiosk", "citizen", "clerk", "supervisor", "admin"]
STAFF_ROLES: frozenset[str] = frozenset({"clerk", "supervisor", "admin"})


@dataclass(frozen=True)
class Principal:
    role: Role
    subject: str
    """Stable actor id for the audit log: ``clerk:wangli``, ``kiosk:kd_…``, ``citizen:…``."""
    clerk_id: int | None = None
    display_name: str = ""
    department: str | None = None
    skills: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    hut_id: str | None = None
    device_id: str | None = None
    citizen_name: str | None = None
    must_change_password: bool = False
    session_hash: str | None = field(default=None, repr=False)
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def public(self) -> dict[str, object]:
        """What the client may see about itself."""
        return {
            "role": self.role,
            "subject": self.subject,
            "display_name": self.display_name,
            "department": self.department,
            "skills": list(self.skills),
            "jurisdictions": list(self.jurisdictions),
            "languages": list(self.languages),
            "hut_id": self.hut_id,
        }
