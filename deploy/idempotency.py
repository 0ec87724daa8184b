"""Idempotency keys that hold across web containers: a ``modal.Dict`` maps a key to the call.

A retried POST after a dropped response can land on another web container (``@modal.concurrent``
containers scale out), so the per-process store of ``jaguar serve`` is not enough here. The
app's state Dict maps ``idem:<scope>:<key>`` to ``{"call_id", "created_at"}``: the first request
spawns the generation and claims the key with ``put(..., skip_if_exists=True)`` (modal 1.6.4
``dict.py`` ``_Dict.put``: "Returns True if the key-value pair was added and False if it wasn't
because the key already existed"); a repeat waits on the same ``FunctionCall`` instead of
generating again. Two racing first requests: the loser cancels its own call and follows the
winner's.

Expiry: a Dict entry disappears after 7 days without reads or writes (``dict.py``, "Lifetime of
a Dict and its items"), later than this module's own :data:`IDEMPOTENCY_TTL_S`, after which a
key is treated as new (its entry is dropped first, so the next claim can write).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from jaguar_sdk.server import key_reused

__all__ = ["IDEMPOTENCY_TTL_S", "SharedIdempotency"]

#: How long a key keeps pointing at its first call: a day, like Stripe's keys; well inside
#: Modal's retention of results and of Dict entries (7 days).
IDEMPOTENCY_TTL_S = 24 * 3600.0


class SharedIdempotency:
    """Idempotency keys shared by every container of the deployment (async, ``.aio`` calls).

    Args:
        state: The app's state ``modal.Dict``.
        ttl_s: How long a key keeps its call.
        clock: Wall-clock seconds (entries are compared across containers).

    Example:
        >>> keys = SharedIdempotency(modal.Dict.from_name("shuttle-jaguar-state"))  # doctest: +SKIP
        >>> await keys.find("generate", "3f2a...")  # doctest: +SKIP
    """

    def __init__(
        self,
        state: Any,
        *,
        ttl_s: float = IDEMPOTENCY_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self.ttl_s = ttl_s
        self._clock = clock

    @staticmethod
    def _key(scope: str, key: str) -> str:
        return f"idem:{scope}:{key}"

    async def find(self, scope: str, key: str, fingerprint: str | None = None) -> str | None:
        """The call id a key already points at, or ``None`` (never seen, or expired).

        Args:
            scope: ``"generate"`` or ``"job"`` (the same key means different things there).
            key: The client's ``Idempotency-Key``.
            fingerprint: The request's fingerprint (``jaguar_sdk.server.fingerprint``); a key
                first used with another request is refused, as ``jaguar serve`` does.

        Raises:
            InvalidRequestError: 422 ``idempotency_key_reused``.
        """
        name = self._key(scope, key)
        entry = await self._state.get.aio(name)
        if not isinstance(entry, dict) or not entry.get("call_id"):
            return None
        if self._clock() - float(entry.get("created_at", 0.0)) > self.ttl_s:
            await self._state.pop.aio(name, None)
            return None
        stored = entry.get("fingerprint")
        if fingerprint is not None and stored is not None and stored != fingerprint:
            raise key_reused()
        return str(entry["call_id"])

    async def claim(
        self, scope: str, key: str, call_id: str, fingerprint: str | None = None
    ) -> str:
        """Point ``key`` at ``call_id`` unless another request got there first.

        Returns:
            The call the key points at now: ``call_id``, or the earlier request's.

        Raises:
            InvalidRequestError: The earlier request under this key was another request.
        """
        name = self._key(scope, key)
        entry = {"call_id": call_id, "created_at": self._clock(), "fingerprint": fingerprint}
        if await self._state.put.aio(name, entry, skip_if_exists=True):
            return call_id
        winner = await self.find(scope, key, fingerprint)
        if winner is None:  # expired and dropped between the two calls: take it
            await self._state.put.aio(name, entry)
            return call_id
        return winner

    async def spawn_once(
        self, scope: str, key: str, fingerprint: str, spawn: Callable[[], Awaitable[Any]]
    ) -> tuple[str, bool]:
        """The call ``key`` points at, spawned by this request when the key is new.

        Args:
            scope: As in :meth:`find`.
            key: The client's ``Idempotency-Key``.
            fingerprint: The request's fingerprint.
            spawn: Spawns the call (``method.spawn.aio(payload)``) and returns its
                ``FunctionCall``; only called when no earlier request holds the key.

        Returns:
            ``(call_id, fresh)``: ``fresh`` when this request's spawn is the key's call. A spawn
            that loses the race to claim the key is cancelled, and the winner's id returned.

        Raises:
            InvalidRequestError: The earlier request under this key was another request.
        """
        found = await self.find(scope, key, fingerprint)
        if found is not None:
            return found, False
        fc = await spawn()
        call_id = str(fc.object_id)
        winner = await self.claim(scope, key, call_id, fingerprint)
        if winner != call_id:  # another container claimed the key first
            await fc.cancel.aio()
            return winner, False
        return call_id, True
