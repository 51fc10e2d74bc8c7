"""Settle where flow results go once per worker, instead of asking the Prefect server on every execution.

A flow with neither result storage nor result persistence set makes Prefect's flow engine read
the server's default storage block (GET /admin/storage) each time it runs: 2.5 requests per
human step in bench/RESULTS.md. The worker reads it once at start and gives each flow the answer
Prefect would have computed. A default storage block set on the server later takes effect when
the worker restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from prefect import Flow
from prefect.client.orchestration import SyncPrefectClient
from prefect.results import get_default_result_storage
from prefect.settings import get_current_settings

K = TypeVar("K")


def with_result_defaults(flows: dict[K, Flow], client: SyncPrefectClient) -> dict[K, Flow]:
    """Return the flows with result storage and persistence set, as Prefect's defaults resolve them now."""
    settings = get_current_settings().results
    server_block = client.read_server_default_result_storage().default_result_storage_block_id
    # Prefect's rule for a top-level flow: the setting, or any default storage block configured.
    persist = settings.persist_by_default or settings.default_storage_block is not None or server_block is not None
    default = get_default_result_storage(_sync=True)
    # A flow takes only a block saved on the server, or a path: the local default is given as its path.
    storage = default if getattr(default, "_block_document_id", None) is not None else Path(default.basepath)
    return {
        key: flow.with_options(
            result_storage=flow.result_storage if flow.result_storage is not None else storage,
            persist_result=flow.persist_result if flow.persist_result is not None else persist,
        )
        for key, flow in flows.items()
    }
