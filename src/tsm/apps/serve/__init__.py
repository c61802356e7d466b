"""``tsm serve``: live recognition for any browser, many streams sharing one batched engine.

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus_client): ``pip install 'tsm[serve]'``.
"""

from tsm.apps.serve.app import create_app
from tsm.apps.serve.served_model import ServedModel, serve_model
from tsm.apps.serve.settings import ServeSettings

__all__ = [
    "ServeSettings",
    "ServedModel",
    "create_app",
    "serve_model",
]
