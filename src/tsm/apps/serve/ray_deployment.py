"""``tsm serve`` on Ray Serve: the same app in N replicas; a WebSocket stays on its replica for its life."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tsm.apps.serve.settings import ServeSettings
from tsm.inference import DEFAULT_ENGINE


def ray_application(
    checkpoint: str | Path,
    *,
    replicas: int = 2,
    engine: str = DEFAULT_ENGINE,
    settings: ServeSettings | None = None,
    device: str = "cpu",
    ray_actor_options: dict[str, Any] | None = None,
) -> Any:
    """A Ray Serve application (pass it to ``ray.serve.run``) of ``create_app`` for ``checkpoint``.

    Each replica loads the checkpoint and builds the app when it starts (Ray Serve's ASGI builder).
    A WebSocket is one long request, so Ray's proxy keeps it on the replica that accepted it: its
    caches live there. ``settings.max_streams`` holds per replica. Needs ``pip install 'tsm[ray]'``.
    """
    from ray import serve

    def build_app() -> Any:
        from tsm.apps.serve.app import create_app

        return create_app(checkpoint, engine=engine, settings=settings, device=device)

    ingress = serve.ingress(build_app)()
    deployment = serve.deployment(
        ingress, name="tsm_serve", num_replicas=replicas, ray_actor_options=ray_actor_options or {}
    )
    return deployment.bind()
