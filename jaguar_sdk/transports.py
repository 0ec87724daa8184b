"""The transport seam, public: what custom transports and the Modal deployment build on.

A transport takes a :class:`Call` and returns a :class:`Reply` (:class:`SyncTransport`,
:class:`AsyncTransport`); :func:`parse_reply` turns a reply into the operation's result model
or raises the mapped :class:`~jaguar_sdk.JaguarError`. The Modal names are the contract between
the Modal transport and the deployment (``deploy/``): :func:`map_modal_error` maps Modal's
exceptions, the deployment's GPU class writes :func:`outcome_record` under :func:`job_key` into
the Dict :func:`state_dict_name`, and :func:`run_job_operation` answers job operations from it
without downloading results. Modal names load on first use (``modal`` stays optional).

Example:
    >>> from jaguar_sdk.transports import Call, parse_reply
    >>> Call(operation="health").operation
    'health'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._core import parse_reply
from ._lazy import lazy_exports
from ._operations import OPERATIONS, Operation, OperationSpec
from ._transports._base import AsyncTransport, Call, Reply, SyncTransport
from ._transports.http import AsyncHttpTransport, HttpTransport

if TYPE_CHECKING:
    from ._transports._modal_jobs import (
        job_key,
        outcome_record,
        run_job_operation,
        state_dict_name,
    )
    from ._transports.local import AsyncLocalTransport, LocalTransport
    from ._transports.modal import AsyncModalTransport, ModalTransport, map_modal_error

__all__ = [
    "OPERATIONS",
    "AsyncHttpTransport",
    "AsyncLocalTransport",
    "AsyncModalTransport",
    "AsyncTransport",
    "Call",
    "HttpTransport",
    "LocalTransport",
    "ModalTransport",
    "Operation",
    "OperationSpec",
    "Reply",
    "SyncTransport",
    "job_key",
    "map_modal_error",
    "outcome_record",
    "parse_reply",
    "run_job_operation",
    "state_dict_name",
]

_LAZY = {
    "LocalTransport": "jaguar_sdk._transports.local",
    "AsyncLocalTransport": "jaguar_sdk._transports.local",
    "ModalTransport": "jaguar_sdk._transports.modal",
    "AsyncModalTransport": "jaguar_sdk._transports.modal",
    "map_modal_error": "jaguar_sdk._transports.modal",
    "job_key": "jaguar_sdk._transports._modal_jobs",
    "outcome_record": "jaguar_sdk._transports._modal_jobs",
    "run_job_operation": "jaguar_sdk._transports._modal_jobs",
    "state_dict_name": "jaguar_sdk._transports._modal_jobs",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
