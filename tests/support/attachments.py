"""What the hub holds of attachments, as the secretariat's provisioning user sees it."""

from __future__ import annotations

from services.core import connection, subjects
from services.hub.credentials import PROVISION_USER
from services.testbed.hub import Hub


async def segments_at_hub(hub: Hub, sender: str, recipient: str | None = None) -> int:
    """Segments held in ``sender``'s attachment stream (for ``recipient`` alone, if given)."""
    async with connection.connect(hub.url, hub.home.user_seed(sender, PROVISION_USER)) as nc:
        stream = subjects.attachment_stream(sender)
        if recipient is None:
            return (await nc.jetstream().stream_info(stream)).state.messages
        info = await nc.jetstream().stream_info(stream, subjects_filter=f"attach.{recipient}.>")
        return sum((info.state.subjects or {}).values())
