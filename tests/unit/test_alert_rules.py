"""deploy/prometheus/alerts.yml: its structure, the faults it covers, and the small evaluator
(tests/support/promql.py) the integration tests fire it with.

That every metric a rule names is one the services really export is checked against live
scrapes in tests/integration/test_metrics.py.
"""

from __future__ import annotations

import pytest

from tests.support.promql import RULES, Scrapes, firing, metric_names, rules

#: issue 15's faults, each with the rules that must cover it
FAULTS = {
    "a state's backlog over a threshold": {"StateBacklogHigh"},
    "a state's redeliveries over a threshold": {"StateRedeliveriesHigh"},
    "a witness not cosigning": {"WitnessNotCosigning"},
    "the audit service not appending": {"AuditNotAppending", "AuditLogStalled"},
    "clock offset": {"NodeClockOffset"},
    "messages past their last attempt": {"StateMessagesPastLastAttempt", "NodeGaveUpOnEnvelopes"},
    "disk use near an account limit": {"StateInboxNearLimit", "AccountStorageNearLimit"},
}


def test_every_rule_is_complete_and_named_once() -> None:
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names)), "an alert name is used twice"
    for r in rules():
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert r["labels"]["severity"] in {"info", "warning", "critical"}, r["alert"]
        assert r["annotations"]["summary"], r["alert"]
        assert metric_names(r["expr"]), f"{r['alert']} names no metric"
        assert all(n.startswith("cifta_") for n in metric_names(r["expr"])), r["alert"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_of_issue_15_has_its_rules(fault: str) -> None:
    names = {r["alert"] for r in rules()}
    assert FAULTS[fault] <= names, f"{fault}: missing {FAULTS[fault] - names}"


def test_the_rules_file_is_shipped_in_deploy() -> None:
    assert RULES.is_file() and RULES.parent.name == "prometheus"


# -- the evaluator, on hand-written scrapes (it must be able to say no) ----------------------------

INBOX = """# TYPE cifta_hub_stream_bytes gauge
cifta_hub_stream_bytes{{account="USA",stream="INBOX_USA"}} {usa}
cifta_hub_stream_bytes{{account="MEX",stream="INBOX_MEX"}} 10
cifta_hub_stream_bytes{{account="MEX",stream="QUARANTINE_MEX"}} 99
# TYPE cifta_hub_stream_max_bytes gauge
cifta_hub_stream_max_bytes{{account="USA",stream="INBOX_USA"}} 100
cifta_hub_stream_max_bytes{{account="MEX",stream="INBOX_MEX"}} 100
cifta_hub_stream_max_bytes{{account="MEX",stream="QUARANTINE_MEX"}} 100
"""


def scrape(text: str, at: float = 1000.0) -> Scrapes:
    s = Scrapes()
    s.add(at, text)
    return s


def test_a_ratio_rule_fires_for_the_one_stream_over_its_threshold() -> None:
    assert firing("StateInboxNearLimit", scrape(INBOX.format(usa=50))) == []
    [fired] = firing("StateInboxNearLimit", scrape(INBOX.format(usa=81)))
    assert fired["stream"] == "INBOX_USA"  # not the quarantine stream, nor MEX's inbox


ACCOUNTS = """# TYPE cifta_hub_account_storage_bytes gauge
cifta_hub_account_storage_bytes{{account="COL"}} {used}
# TYPE cifta_hub_account_reserved_storage_bytes gauge
cifta_hub_account_reserved_storage_bytes{{account="COL"}} 1000
"""


def test_an_account_near_its_reserved_storage_fires() -> None:
    assert firing("AccountStorageNearLimit", scrape(ACCOUNTS.format(used=500))) == []
    assert firing("AccountStorageNearLimit", scrape(ACCOUNTS.format(used=900))) == [
        {"account": "COL"}
    ]


GAVE_UP = """# TYPE cifta_node_refusals counter
cifta_node_refusals_total{{party="USA",reason="processing_failed"}} {n}
cifta_node_refusals_total{{party="USA",reason="bad_signature"}} {n}
"""


def test_increase_counts_only_within_the_window_and_only_the_named_reason() -> None:
    s = Scrapes()
    s.add(0.0, GAVE_UP.format(n=2))
    s.add(4000.0, GAVE_UP.format(n=2))
    s.add(5000.0, GAVE_UP.format(n=2))
    assert firing("NodeGaveUpOnEnvelopes", s) == []  # 2 before the hour, none since
    s.add(6000.0, GAVE_UP.format(n=3))
    assert firing("NodeGaveUpOnEnvelopes", s) == [{"party": "USA", "reason": "processing_failed"}]


STALLED = """# TYPE cifta_audit_backlog gauge
cifta_audit_backlog{{party="MEX"}} {backlog}
# TYPE cifta_audit_last_append_timestamp_seconds gauge
cifta_audit_last_append_timestamp_seconds 1000
"""


def test_and_on_nothing_joins_a_labelled_vector_with_an_unlabelled_one() -> None:
    assert firing("AuditLogStalled", scrape(STALLED.format(backlog=5), at=1200)) == []
    assert firing("AuditLogStalled", scrape(STALLED.format(backlog=0), at=1400)) == []
    assert firing("AuditLogStalled", scrape(STALLED.format(backlog=5), at=1400)) == [
        {"party": "MEX", "__name__": "cifta_audit_backlog"}
    ]


HUB_STORAGE = """# TYPE cifta_hub_jetstream_storage_bytes gauge
cifta_hub_jetstream_storage_bytes{{server="cifta-hub"}} {used}
cifta_hub_jetstream_storage_bytes{{server="cifta-hub-2"}} 100
# TYPE cifta_hub_jetstream_max_storage_bytes gauge
cifta_hub_jetstream_max_storage_bytes{{server="cifta-hub"}} 1000
cifta_hub_jetstream_max_storage_bytes{{server="cifta-hub-2"}} 1000
"""


def test_a_hub_server_near_its_jetstream_disk_fires_for_that_server_alone() -> None:
    """Not fired on a real hub: the plan keeps the accounts' limits within the server's disk, so
    80% of it takes writing more than a gibibyte (docs/operations.md, section 3.3)."""
    assert firing("HubStorageNearLimit", scrape(HUB_STORAGE.format(used=800))) == []
    assert firing("HubStorageNearLimit", scrape(HUB_STORAGE.format(used=801))) == [
        {"server": "cifta-hub"}
    ]
