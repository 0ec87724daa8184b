"""Stand-ins for the Modal objects the deployment and the SDK use, modelling modal 1.6.4.

No test may contact Modal, so these replace ``modal.Cls.from_name``, ``modal.FunctionCall
.from_id``, ``modal.Dict.from_name``, ``modal.current_function_call_id`` and the deployment's
Volume. Each behaviour below is what the installed modal source does (file, function):

- ``FunctionCall.get(timeout)`` (``_functions.py`` ``_Invocation.poll_function``): the output when
  there is one (downloaded: counted in :attr:`StandInCall.downloads`); builtin ``TimeoutError``
  while the input is unfinished; ``OutputExpiredError`` when there is no output and no unfinished
  input; a failure re-raises the remote exception (``_utils/function_utils.py``
  ``_process_result``), a terminated (cancelled) input with no data raises ``RemoteError``.
- ``FunctionCall.from_id`` is lazy (``hydrate_lazily=True``): an unknown id fails at first use,
  with ``NotFoundError``.
- ``FunctionCall.get_call_graph()`` (``call_graph.py``): ``InputInfo`` nodes with an
  ``InputStatus``; best effort, a node may be missing (:attr:`StandInCall.graph_captured`).
- ``FunctionCall.cancel()``: a queued input never runs; a running sync input gets
  ``InputCancellation`` raised in it (``_container_entrypoint.py``), modelled at its next call of
  ``modal.current_function_call_id()``.
- ``Dict.put(key, value, *, skip_if_exists)`` returns whether it wrote; ``get(key, default)``;
  ``pop(key, default)``; values are cloudpickled copies; an entry expires after 7 days without
  reads or writes (``dict.py``).
- ``Volume.commit()``/``reload()`` (``volume.py``): another container's writes are seen only
  after it commits and this one reloads.
- Every method has ``.aio``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import pickle
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import modal
import modal.exception as me
import pytest
from modal.types import InputInfo, InputStatus

__all__ = ["Aio", "StandInCall", "StandInCls", "StandInDict", "StandInModal", "StandInVolume"]

_NO_DEFAULT = object()


class Aio:
    """A callable with an ``.aio`` twin, like a synchronicity-wrapped modal method."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._fn, *args, **kwargs)


class StandInDict:
    """``modal.Dict``: get / put(skip_if_exists) / pop / contains, pickled values, 7-day expiry."""

    INACTIVE_EXPIRY_S = 7 * 24 * 3600.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self.get = Aio(self._get)
        self.put = Aio(self._put)
        self.pop = Aio(self._pop)
        self.contains = Aio(self._contains)

    def _live(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._clock() - entry[1] > self.INACTIVE_EXPIRY_S:
            del self._data[key]
            return None
        self._data[key] = (entry[0], self._clock())  # a read is activity
        return entry[0]

    def _get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            raw = self._live(key)
        return default if raw is None else pickle.loads(raw)

    def _put(self, key: str, value: Any, *, skip_if_exists: bool = False) -> bool:
        with self._lock:
            if skip_if_exists and self._live(key) is not None:
                return False
            self._data[key] = (pickle.dumps(value), self._clock())
            return True

    def _pop(self, key: str, default: Any = _NO_DEFAULT) -> Any:
        with self._lock:
            raw = self._live(key)
            if raw is None:
                if default is _NO_DEFAULT:
                    raise KeyError(f"{key} not in dict")
                return default
            del self._data[key]
        return pickle.loads(raw)

    def _contains(self, key: str) -> bool:
        with self._lock:
            return self._live(key) is not None

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._data)


class StandInCall:
    """``modal.FunctionCall`` of one spawned input."""

    def __init__(self, call_id: str, future: concurrent.futures.Future[Any]) -> None:
        self.object_id = call_id
        self._future = future
        self.status = InputStatus.PENDING
        self.downloads = 0
        self.gets = 0
        self.graph_captured = True
        self.expired = False
        self.get = Aio(self._get)
        self.cancel = Aio(self._cancel)
        self.get_call_graph = Aio(self._get_call_graph)
        future.add_done_callback(self._finished)

    def _finished(self, future: concurrent.futures.Future[Any]) -> None:
        if self.status == InputStatus.TERMINATED or future.cancelled():
            self.status = InputStatus.TERMINATED
        elif future.exception() is not None:
            self.status = InputStatus.FAILURE
        else:
            self.status = InputStatus.SUCCESS

    def _get(self, timeout: float | None = None) -> Any:
        self.gets += 1
        if self.expired:
            raise me.OutputExpiredError()
        if self.status == InputStatus.TERMINATED:
            raise me.RemoteError("")
        try:
            value = self._future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError() from None  # the builtin, as poll_function raises
        self.downloads += 1
        return pickle.loads(pickle.dumps(value))

    def _cancel(self, terminate_containers: bool = False) -> None:
        if self._future.done():
            return
        self.status = InputStatus.TERMINATED
        self._future.cancel()  # a queued input never runs

    def _get_call_graph(self) -> list[InputInfo]:
        if self.expired or not self.graph_captured:
            return []
        return [
            InputInfo(
                f"in-{self.object_id}",
                self.object_id,
                "ta-standin",
                self.status,
                "JaguarModel.generate",
                "deploy.app",
                [],
            )
        ]


class _UnknownCall:
    """``FunctionCall.from_id`` of an id the server does not know: fails at first use."""

    def __init__(self, call_id: str) -> None:
        self.object_id = call_id
        fail = self._fail
        self.get = Aio(fail)
        self.cancel = Aio(fail)
        self.get_call_graph = Aio(fail)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise me.NotFoundError(f"Function call {self.object_id} not found")


class StandInModal:
    """The registry behind the stand-ins: spawned calls, the state Dict, the current call."""

    def __init__(self) -> None:
        self.calls: dict[str, StandInCall] = {}
        self.state = StandInDict()
        self.dict_names: list[str] = []
        self._ids = itertools.count(1)
        self._local = threading.local()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        self.gate = threading.Event()  # spawned inputs wait on it (set: run at once)
        self.gate.set()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> StandInCall:
        call_id = f"fc-{next(self._ids):06d}"

        def run() -> Any:
            assert self.gate.wait(30), "the stand-in's gate stayed closed"
            self._local.call_id = call_id
            try:
                return fn(*args)
            finally:
                self._local.call_id = None

        call = StandInCall(call_id, self._pool.submit(run))
        self.calls[call_id] = call
        return call

    def from_id(self, function_call_id: str, client: Any = None) -> Any:
        return self.calls.get(function_call_id) or _UnknownCall(function_call_id)

    def current_function_call_id(self) -> str | None:
        call_id = getattr(self._local, "call_id", None)
        if call_id is not None and self.calls[call_id].status == InputStatus.TERMINATED:
            raise me.InputCancellation("Input was cancelled by user")
        return call_id

    def dict_from_name(self, name: str, **kwargs: Any) -> StandInDict:
        self.dict_names.append(name)
        return self.state

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Patch the modal entry points (not the class lookup: see :meth:`StandInCls.install`)."""
        import deploy.app as deploy_app

        monkeypatch.setattr(modal.FunctionCall, "from_id", self.from_id)
        monkeypatch.setattr(modal.Dict, "from_name", self.dict_from_name)
        monkeypatch.setattr(modal, "current_function_call_id", self.current_function_call_id)
        monkeypatch.setattr(deploy_app, "state", self.state)

    def close(self) -> None:
        self.gate.set()
        self._pool.shutdown(wait=True)


class _Method:
    """``obj.method``: ``.remote`` / ``.spawn`` (each with ``.aio``) and ``.local``."""

    def __init__(self, owner: StandInCls, name: str) -> None:
        self._owner = owner
        self._name = name
        self.remote = Aio(self._remote)
        self.spawn = Aio(self._spawn)

    def _run(self, *args: Any) -> Any:
        return getattr(self._owner.container, self._name).local(*args)

    def _remote(self, *args: Any) -> Any:
        self._owner.invocations.append(("remote", self._name))
        return self._run(*args)

    def _spawn(self, *args: Any) -> StandInCall:
        self._owner.invocations.append(("spawn", self._name))
        return self._owner.modal.spawn(self._run, *args)


class StandInCls:
    """``modal.Cls.from_name(app, "JaguarModel")`` over one real ``JaguarModel`` run locally.

    Attributes:
        container: The real class, instantiated; its methods run with ``.local()``.
        invocations: ``(kind, method)`` for every remote/spawn, to prove what reached the GPU.
        options: Every ``with_options(...)`` asked for.
        lookups: Every ``(app, name, environment)`` looked up.
    """

    def __init__(self, registry: StandInModal) -> None:
        import deploy.app as deploy_app

        self.modal = registry
        self.container = deploy_app.JaguarModel()
        self.container.health.local()  # run the enter hooks once, on this thread
        self.invocations: list[tuple[str, str]] = []
        self.options: list[dict[str, Any]] = []
        self.lookups: list[tuple[str, str, str | None]] = []

    def with_options(self, **options: Any) -> StandInCls:
        self.options.append(options)
        return self

    def __call__(self) -> Any:
        owner = self

        class _Obj:
            def __getattr__(self, name: str) -> _Method:
                if name not in ("generate", "info", "health", "reload"):
                    raise me.NotFoundError(f"Class has no method {name}")
                return _Method(owner, name)

        return _Obj()

    def from_name(self, app: str, name: str, *, environment_name: str | None = None) -> Any:
        self.lookups.append((app, name, environment_name))
        return self

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Route ``modal.Cls.from_name`` and the web function's GPU handle here."""
        import deploy.app as deploy_app

        monkeypatch.setattr(modal.Cls, "from_name", self.from_name)
        monkeypatch.setattr(deploy_app, "gpu_class", lambda: self)


class StandInVolume:
    """A Modal Volume shared by this container (``mount``) and others.

    ``commit()`` publishes this container's view; ``reload()`` makes the latest committed state
    visible here. :meth:`other_view` and :meth:`commit_other` act as another container.
    """

    def __init__(self, mount: Path, committed: Path) -> None:
        self.mount = mount
        self.committed = committed
        self.commits = 0
        self.reloads = 0
        self.fail_commit: Exception | None = None
        mount.mkdir(parents=True, exist_ok=True)
        committed.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _mirror(src: Path, dst: Path) -> None:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)

    def commit(self) -> None:
        if self.fail_commit is not None:
            raise self.fail_commit
        self.commits += 1
        self._mirror(self.mount, self.committed)

    def reload(self) -> None:
        self.reloads += 1
        self._mirror(self.committed, self.mount)

    def other_view(self, where: Path) -> Path:
        """Another container's mount, as of the latest commit."""
        self._mirror(self.committed, where)
        return where

    def commit_other(self, where: Path) -> None:
        """That container commits."""
        self._mirror(where, self.committed)
