"""The HTTP server: a FastAPI app over :class:`~jaguar_sdk.service.JaguarService`.

Needs the ``server`` extra (``pip install 'jaguar-sdk[server]'``). ``create_app`` builds the app
used by ``jaguar serve`` and by the Modal web endpoint; ``serve`` runs it with uvicorn.

Example:
    >>> from jaguar_sdk.server import serve
    >>> serve("tiny", port=8000)  # doctest: +SKIP
"""

from ._app import create_app
from ._jobs import JobBackend, StoreJobBackend
from ._serve import serve

__all__ = ["JobBackend", "StoreJobBackend", "create_app", "serve"]
