"""Wrong key ids typed at approval, counted: guessing the id a state reads out by telephone is
the one way around the check (Art. XIV.2), so guesses are few.

A registration's approval is refused for ``FREEZE`` once ``MAX_WRONG`` wrong key ids were typed
for that request (whoever typed them), and an operator's approvals once they typed ``MAX_WRONG``
wrong ones (whichever the requests, so that spreading guesses over requests gains nothing). A
right id clears its request's count and its operator's. A malformed id is not counted: it is a
slip of the keyboard, not a guess, and says nothing about the right one.

The counts are kept in a small file of the hub's directory home, so a restart forgets nothing;
the rules are a pure function of the counts, the event and the time, which is passed in.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from services.core.files import write_secret
from services.secretariat.errors import ErrorCode, SecretariatError

MAX_WRONG: Final = 5
FREEZE: Final = timedelta(minutes=15)


@dataclass(frozen=True)
class Tally:
    """Wrong ids typed in a row for one request or by one operator, and the end of a freeze."""

    wrong: int = 0
    frozen_until: str | None = None  # ISO 8601

    def frozen_at(self, now: datetime) -> datetime | None:
        until = datetime.fromisoformat(self.frozen_until) if self.frozen_until else None
        return until if until is not None and until > now else None


def apply(tally: Tally, event: Literal["wrong", "right"], now: datetime) -> Tally:
    """The tally after one typed id."""
    if event == "right":
        return Tally()
    if tally.frozen_until and tally.frozen_at(now) is None:  # a past freeze: counted anew
        tally = Tally()
    wrong = tally.wrong + 1
    if wrong >= MAX_WRONG:
        return Tally(0, (now + FREEZE).isoformat())
    return replace(tally, wrong=wrong)


def _shown(until: datetime) -> str:
    return until.strftime("%Y-%m-%d %H:%M UTC")


class ApprovalGuard:
    """The counts of one hub's directory, read and written whole."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Tally]:
        if not self.path.exists():
            return {}
        return {k: Tally(**v) for k, v in json.loads(self.path.read_text()).items()}

    def _save(self, tallies: dict[str, Tally], now: datetime) -> None:
        kept = {k: asdict(t) for k, t in tallies.items() if t.wrong or t.frozen_at(now)}
        write_secret(self.path, json.dumps(kept, sort_keys=True).encode())

    def check(self, request_id: str, operator: str | None, now: datetime) -> None:
        """Refused with APPROVAL_FROZEN (this request) or APPROVER_FROZEN (this operator) while
        frozen."""
        tallies = self._load()
        frozen = tallies.get(f"request:{request_id}", Tally()).frozen_at(now)
        if frozen is not None:
            raise SecretariatError(ErrorCode.APPROVAL_FROZEN, count=MAX_WRONG, until=_shown(frozen))
        if operator is not None:
            frozen = tallies.get(f"operator:{operator}", Tally()).frozen_at(now)
            if frozen is not None:
                raise SecretariatError(
                    ErrorCode.APPROVER_FROZEN, count=MAX_WRONG, until=_shown(frozen)
                )

    def typed(
        self, request_id: str, operator: str | None, event: Literal["wrong", "right"], now: datetime
    ) -> None:
        """Count one typed id for the request and the operator."""
        tallies = self._load()
        keys = [f"request:{request_id}"] + ([f"operator:{operator}"] if operator else [])
        for key in keys:
            tallies[key] = apply(tallies.get(key, Tally()), event, now)
        self._save(tallies, now)
