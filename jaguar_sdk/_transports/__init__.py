"""Transports: the ways a client reaches a model (HTTP, in-process, Modal).

Each one implements :class:`~jaguar_sdk.SyncTransport` or :class:`~jaguar_sdk.AsyncTransport`
(``_base``); everything else (validation, retries, deadlines, parsing) is the shared core's.
The public names are re-exported from :mod:`jaguar_sdk`; nothing is imported here, so the Modal
transport (and ``modal``) and the local one (the service) load only when used.
"""
