"""Isolation re-proven on the three-server cluster: every test of test_isolation.py, each against
a running R3 cluster instead of one server (routes carry every account's traffic between the
members, and the account wall must hold on whichever member a client lands)."""

from __future__ import annotations

import pytest

from services.testbed.cluster import ClusterHub
from tests.security.test_isolation import (  # noqa: F401 - collected here, against the cluster
    test_a_node_cannot_create_change_or_delete_a_consumer,
    test_a_node_cannot_delete_or_purge_streams,
    test_a_node_reads_its_directory_bucket_and_cannot_write_it,
    test_a_state_cannot_publish_as_another_state,
    test_a_state_cannot_read_another_states_stream_or_consumer,
    test_a_state_cannot_subscribe_to_another_states_inbox,
    test_a_state_cannot_write_into_its_own_inbox_under_another_name,
    test_a_state_direct_gets_its_own_inbox_and_not_another_states,
    test_even_the_secretariat_cannot_purge_or_delete_messages_of_an_inbox,
    test_no_one_can_purge_a_states_directory_bucket,
    test_the_account_wall_holds_even_for_a_states_unrestricted_user,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def hub(cluster_hub: ClusterHub) -> ClusterHub:
    """The tests' ``hub``: here, the cluster."""
    return cluster_hub
