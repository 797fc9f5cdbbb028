"""The hub's part of blind record lookup (docs/lookup.md, section 6), rendered into the config.

- Evaluation: state ``B`` exports ``lookup.eval.B.A`` to account ``A`` alone, which imports it:
  ``A`` can ask ``B`` under its own code and no other, exactly as it writes into ``B``'s inbox.
  ``B``'s node subscribes ``lookup.eval.B.*`` and answers on the reply subject the broker made.
- Filters: one bucket, ``LOOKUP_FILTERS``, in the secretariat's account. The secretariat exports
  ``$KV.LOOKUP_FILTERS.A`` to ``A`` alone (``A`` writes its own filter and no other) and direct
  gets of the bucket to every state, imported under ``$JS.LOOKUP.API`` (reads only: no import
  reaches the bucket's stream API for anything else).
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js import api
from nats.js.errors import BucketNotFoundError

from schemas.lookup import MAX_FILTER_BYTES
from services.core import subjects


def node_publish(state: str) -> list[str]:
    """What ``state``'s node user may publish for lookups."""
    return [
        f"lookup.eval.*.{state}",  # ask any state, as itself
        subjects.lookup_filter_key(state),  # put its own filter
        subjects.lookup_filter_read_import(),  # read any state's filter
    ]


def node_subscribe(state: str) -> list[str]:
    """What ``state``'s node user may subscribe to for lookups: its evaluation endpoint."""
    return [subjects.lookup_evaluation_filter(state)]


def state_exports(state: str, others: list[str]) -> list[dict[str, object]]:
    return [
        {"service": subjects.lookup_evaluation_subject(state, asker), "accounts": [asker]}
        for asker in others
    ]


def state_imports(state: str, others: list[str], secretariat: str) -> list[dict[str, object]]:
    imports: list[dict[str, object]] = [
        {
            "service": {
                "account": answerer,
                "subject": subjects.lookup_evaluation_subject(answerer, state),
            }
        }
        for answerer in others
    ]
    imports += [
        {"service": {"account": secretariat, "subject": subjects.lookup_filter_key(state)}},
        {
            "service": {"account": secretariat, "subject": subjects.lookup_filter_read()},
            "to": subjects.lookup_filter_read_import(),
        },
    ]
    return imports


def secretariat_exports(states: list[str]) -> list[dict[str, object]]:
    exports: list[dict[str, object]] = [
        {"service": subjects.lookup_filter_key(state), "accounts": [state]} for state in states
    ]
    exports.append({"service": subjects.lookup_filter_read(), "accounts": list(states)})
    return exports


async def ensure_filter_bucket(nc: Client, replicas: int = 1) -> None:
    """Create the ``LOOKUP_FILTERS`` bucket (as the secretariat's operator) if it is missing."""
    js = nc.jetstream()
    try:
        await js.key_value(subjects.LOOKUP_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(
            api.KeyValueConfig(
                bucket=subjects.LOOKUP_BUCKET,
                description="Each state's signed lookup filter, one key per state",
                history=4,
                storage=api.StorageType.FILE,
                replicas=replicas,
                # the largest filter, base64url twice (in the filter, then in the signed form)
                max_value_size=MAX_FILTER_BYTES * 16 // 9 + 64 * 1024,
                direct=True,  # read by direct get, the only API the states import
            )
        )
