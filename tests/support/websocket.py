"""A `websockets` sync client connected to a live `kubesvc apiserver` (its TLS context, no message size limit)."""

from __future__ import annotations

from typing import Any

from tests.apiserver.fixtures import Api


def ws_url(api: Api, path: str) -> str:
    return api.url.replace("https://", "wss://").replace("http://", "ws://") + path


def ws_connect(api: Api, path: str, protocols: list[str], headers: dict[str, str] | None = None) -> Any:
    from websockets.sync.client import connect

    return connect(ws_url(api, path), subprotocols=protocols, ssl=api.ssl_context(), additional_headers=headers,  # type: ignore[arg-type]
                   max_size=None, open_timeout=30)
