"""A node's settings: ``<home>/node.json``, overridden by ``CIFTA_NODE_*`` environment variables."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from schemas.base import PartyCode
from services.core.directory import DirectoryTrust, RootPublicKey
from services.core.logs import log_level
from services.core.tracing import check_endpoint
from services.node.workflows.tracing import TracingPolicy

SETTINGS_FILE = "node.json"
_DEFAULT_FILES = {
    "root": "root.json",
    "audit_key": "audit.json",
    "credentials": "hub.nk",
    "keys": "keys.json",
    "directory": "directory.json",
    "store": "store.sqlite",
}


class _EnvironmentButHome(EnvSettingsSource):
    """``CIFTA_NODE_*`` variables, except ``CIFTA_NODE_HOME``: that one only picks the home
    (the CLI's default for ``--home``); it must not override the home a command was given."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        values.pop("home", None)
        return values


class NodeSettings(BaseSettings):
    """Everything a node needs to run; paths default to files in its home."""

    model_config = SettingsConfigDict(env_prefix="CIFTA_NODE_", extra="forbid", frozen=True)

    party: PartyCode
    home: Path
    hub_url: str = "nats://127.0.0.1:4222"
    #: On a state's leaf node (docs/operations.md, "A state's leaf"): the local stream its
    #: envelopes are stored in (``OUTBOX_<party>``) before the hub sources them; ``hub_url`` is
    #: then the leaf's. None: published straight into each recipient's inbox at the hub.
    outbox_stream: str | None = None
    #: The node user's NKey seed file, from the secretariat's onboarding bundle.
    credentials: Path | None = None
    keys: Path | None = None
    #: The secretariat's directory root key, pinned from the onboarding bundle.
    root: Path | None = None
    #: The audit log's checkpoint key, pinned from the onboarding bundle (no file: no witness).
    audit_key: Path | None = None
    witness_interval_s: float = Field(default=30.0, gt=0)
    #: Name of the environment variable holding the key file's passphrase, if it has one.
    passphrase_env: str | None = None
    directory: Path | None = None
    store: Path | None = None
    #: CA bundle to verify the hub's TLS certificate (``tls://`` URLs).
    tls_ca: Path | None = None
    #: Used until the node has read its consumer's own max_deliver from the hub at start: on the
    #: last attempt an envelope that cannot be processed is quarantined and terminated.
    max_deliver: int = Field(default=10, ge=1)
    fetch_batch: int = Field(default=64, ge=1, le=1024)
    fetch_timeout_s: float = Field(default=2.0, gt=0)
    publish_timeout_s: float = Field(default=5.0, gt=0)
    publish_concurrency: int = Field(default=64, ge=1)
    #: A round of the outbox in flight this long no longer holds the next one back (pipelining,
    #: services/node/outbox.py): what is composed while the hub acknowledges a round goes out
    #: then, not a whole round trip later. Longer than the hub takes to acknowledge a round on a
    #: short link, where a burst should share one round and one commit; short beside a link
    #: between countries. Well above ``publish_timeout_s`` (60, say): one round at a time.
    publish_overlap_s: float = Field(default=0.025, ge=0)
    #: The audit events wait this long for more before a round of fewer than a full batch goes
    #: out (services/node/outbox.py, ``linger_s``): under a steady load of messages one at a time,
    #: one publish round and one commit for tens of events instead of one for each. The audit
    #: service has them that much later; no one waits on them. 0: each goes out at once.
    events_linger_s: float = Field(default=0.1, ge=0, le=5)
    retry_initial_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    outbox_poll_s: float = Field(default=0.5, gt=0)
    #: Reception awareness (services/node/outbox.py): a message its recipient has not answered
    #: (a receipt or a rejection) this long after the hub stored it is sent again, the same bytes,
    #: after twice as long each time, ``answer_resends`` times; then an alert. The defaults send
    #: again after 10, 30, 70, 150 and 310 minutes and raise the alert after 10 h 30 min.
    answer_wait_s: float = Field(default=600.0, gt=0)
    answer_resends: int = Field(default=5, ge=0, le=20)
    require_pq_signature: bool = False
    #: fsync every SQLite commit (survives power loss, slower); by default a commit survives a
    #: crash of the process, not of the machine (services/node/store/db.py).
    durable_commits: bool = False
    #: Tracing due dates by priority (Art. XIII.3): published practice asks an answer within 24
    #: hours for an urgent request and within 7 days for a routine one.
    tracing_urgent_hours: float = Field(default=24.0, gt=0)
    tracing_routine_days: float = Field(default=7.0, gt=0)
    #: How often the node looks at its procedures' deadlines (and once at every start).
    casework_tick_s: float = Field(default=60.0, gt=0)
    #: Deferral (services/node/parking.py): what one publishing state may have parked here at
    #: once, and for how long, before its envelopes are refused with their reason code.
    park_max_per_sender: int = Field(default=100, ge=1)
    park_max_bytes_per_sender: int = Field(default=16 * 1024 * 1024, ge=1024)
    park_max_age_s: float = Field(default=2 * 3600.0, gt=0)
    #: The clock (services/node/app.py): compared with the hub's at start and this often; past
    #: the tolerance the node alarms and refuses to date messages. Well inside the five minutes
    #: receivers allow, so the alarm comes before others refuse what this node sends.
    clock_check_s: float = Field(default=60.0, gt=0)
    clock_tolerance_s: float = Field(default=120.0, gt=0)
    #: The store (services/node/health.py): how long a write waits for another process's lock,
    #: and how often a failing store is probed.
    store_busy_timeout_s: float = Field(default=10.0, gt=0)
    store_probe_s: float = Field(default=1.0, gt=0)
    #: How often the running node copies the store's WAL into its file, from a thread of its own
    #: (services/node/store/wal.py); 0: SQLite does it inside a commit, on the event loop.
    store_checkpoint_s: float = Field(default=1.0, ge=0)
    #: Group commit (services/node/inbox.py): the deliveries of one fetched batch are stored in
    #: one transaction, each acknowledged after it commits; a window above 0 lingers for more.
    group_commit_s: float = Field(default=0.0, ge=0)
    #: Blind record lookup (docs/lookup.md, section 7): evaluations this node answers for one
    #: asking state within ``lookup_window_s``; past it, ``lookup_over_budget``. Serial numbers
    #: are guessable, so this budget and the audit trail are the defence against enumeration.
    lookup_budget: int = Field(default=500, ge=0)
    lookup_window_s: float = Field(default=24 * 3600.0, gt=0)
    #: The false-positive rate this state's published filter is built for.
    lookup_fp_rate: float = Field(default=1e-6, gt=0, lt=0.5)
    #: Attachments (docs/envelope.md section 13): the largest file this node sends or accepts;
    #: the hub's per-account cap is the recipient's attachment stream's size.
    attachment_max_bytes: int = Field(default=100 * 1024 * 1024, ge=0)
    #: How long the hub must have said a segment is not there before a message is refused as
    #: ``attachment_missing`` (a refusal is final: the sender then drops its copy). A replica
    #: catching up after a restart answers "not found" for what it has not applied yet.
    attachment_missing_grace_s: float = Field(default=600.0, ge=0)
    #: OpenTelemetry (services/core/tracing.py): the state's own OTLP/HTTP collector, HTTPS or
    #: on this machine; None: no traces. Spans never cross to the hub or another state.
    otlp_endpoint: str | None = None
    log_json: bool = True
    log_level: str = "INFO"

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint_inside_the_state(cls, value: str | None) -> str | None:
        return None if value is None else check_endpoint(value)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        return log_level(value)

    @model_validator(mode="after")
    def _paths_in_home(self) -> NodeSettings:
        for name, filename in _DEFAULT_FILES.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.home / filename)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the home's node.json (passed in as init values).
        return _EnvironmentButHome(settings_cls), init_settings

    @classmethod
    def load(cls, home: Path, **overrides: Any) -> NodeSettings:
        """Read ``<home>/node.json``; environment variables, then ``overrides``, win over it."""
        path = home / SETTINGS_FILE
        values: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        values["home"] = home
        settings = cls(**values)
        return settings.model_copy(update=overrides) if overrides else settings

    def save(self) -> Path:
        """Write the settings that differ from the defaults to ``<home>/node.json``."""
        data = self.model_dump(mode="json", exclude_defaults=True, exclude={"home"})
        for name, filename in _DEFAULT_FILES.items():
            if name in data and Path(data[name]) == self.home / filename:
                data.pop(name)
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / SETTINGS_FILE
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def directory_trust(self) -> DirectoryTrust:
        """The node's verified directory: its pinned root key and its cache."""
        return DirectoryTrust(RootPublicKey.load(self.root_path), cache=self.directory_path)

    def tracing_policy(self) -> TracingPolicy:
        return TracingPolicy(
            urgent=timedelta(hours=self.tracing_urgent_hours),
            routine=timedelta(days=self.tracing_routine_days),
        )

    # convenience accessors with the defaults applied (typed non-optional)
    @property
    def credentials_path(self) -> Path:
        assert self.credentials is not None
        return self.credentials

    @property
    def root_path(self) -> Path:
        assert self.root is not None
        return self.root

    @property
    def audit_key_path(self) -> Path:
        assert self.audit_key is not None
        return self.audit_key

    @property
    def keys_path(self) -> Path:
        assert self.keys is not None
        return self.keys

    @property
    def directory_path(self) -> Path:
        assert self.directory is not None
        return self.directory

    @property
    def store_path(self) -> Path:
        assert self.store is not None
        return self.store
