"""One Prefect flow per process of flows.yaml."""
from __future__ import annotations

from prefect import Flow


def implemented_flows() -> dict[str, Flow]:
    """Return the flow of every implemented process, by process key."""
    from flows.returns_exchange import returns_exchange

    return {"returns_exchange": returns_exchange}
