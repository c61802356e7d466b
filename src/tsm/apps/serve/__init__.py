"""``tsm serve``: live recognition for any browser, many streams sharing one batched engine.

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus_client): ``pip install 'tsm[serve]'``.
"""

from tsm.apps.serve.app import create_app
from tsm.apps.serve.served_model import ENGINES, ServedModel, StreamingEngine, serve_model, streaming_engine
from tsm.apps.serve.settings import ServeSettings

__all__ = [
    "ENGINES",
    "ServeSettings",
    "ServedModel",
    "StreamingEngine",
    "create_app",
    "serve_model",
    "streaming_engine",
]
