"""The registry of states the hub serves: a versioned data file until the directory service lands.

``deploy/registry.json`` is the checked-in starting point; ``cifta hub init`` copies it into the hub
home; approving a new state's registration (``cifta directory approve``) adds it there and bumps
the version. Which keys speak for each state is the directory's business, not the registry's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import CountryCode, PartyCode, ShortText
from services.core.files import write_atomic

REGISTRY_FORMAT = "cifta-registry-v1"


class StateEntry(BaseModel):
    """One State Party on the network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: CountryCode
    name: ShortText


class Registry(BaseModel):
    """The states the hub serves, and the version of this list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["cifta-registry-v1"] = "cifta-registry-v1"
    version: int = Field(ge=1)
    secretariat: PartyCode = "SEC"
    states: list[StateEntry]

    def codes(self) -> list[str]:
        return [s.code for s in self.states]

    def state(self, code: str) -> StateEntry | None:
        return next((s for s in self.states if s.code == code), None)

    def with_state(self, entry: StateEntry) -> Registry:
        """A new version with ``entry`` added, or replacing the state's previous entry."""
        if entry.code in self.codes():  # in its place
            states = [entry if s.code == entry.code else s for s in self.states]
        else:
            states = [*self.states, entry]
        return self.model_copy(update={"version": self.version + 1, "states": states})

    @classmethod
    def load(cls, path: Path) -> Registry:
        return cls.model_validate_json(path.read_bytes())

    def save(self, path: Path) -> None:
        write_atomic(path, (json.dumps(self.model_dump(mode="json"), indent=2) + "\n").encode())
