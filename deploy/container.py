"""What one GPU container does, in the order Modal runs it (``JaguarModel`` in app.py delegates).

1. :meth:`ModelContainer.load_to_cpu` (``@modal.enter(snap=True)``): find the weights on the
   Volume (or fail naming the weights step), load them into host RAM (no memory mapping) under
   :func:`~jaguar_sdk.engine.no_cuda_query`, so the CPU memory snapshot holds the weights and no
   CUDA answer.
2. :meth:`ModelContainer.to_gpu` (``@modal.enter(snap=False)``, after every restore): insist on a
   CUDA device, re-read ``CURRENT`` from the Volume (a snapshot freezes the revision it loaded),
   rebuild if ``jaguar model update`` moved it, move to the GPU, compile if asked, warm up.
3. :meth:`ModelContainer.call`: the Modal methods, plain data in and out; ``info`` and ``reload``
   answer the same shape, with where this container's weights came from and its own timings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from deploy.settings import DeploySettings
from deploy.weights import WeightsMissingError, find_weights, missing_message
from jaguar_sdk import ModelRef
from jaguar_sdk.transports import job_key, outcome_record

if TYPE_CHECKING:
    from jaguar_sdk.engine import Engine
    from jaguar_sdk.server import EngineLike, JaguarService
    from jaguar_sdk.weights import EnsureResult, UpdateChecker, WeightStore

__all__ = ["ModelContainer"]

logger = logging.getLogger("jaguar_sdk.deploy")

#: How long model info reuses the upstream answer of its update check (one Hub request per
#: container per period; a failed request is retried after a minute).
UPDATE_CHECK_TTL_S = 15 * 60.0
#: Set by Modal in every container; a restore rewrites it with the restoring task's id
#: (modal/_runtime/task_lifecycle_manager.py ``memory_restore``: ``restored_state`` values go to
#: ``os.environ`` under ``_env_var_name(key)``, i.e. ``MODAL_TASK_ID`` for ``task_id``).
TASK_ID_ENV = "MODAL_TASK_ID"


class ModelContainer:
    """The GPU container's state: the engine, where its weights came from, its timings.

    Args:
        settings: The deploy settings.
        open_store: Makes the weight store (with ``Volume.commit``/``reload`` on Modal).
        volume_reload: ``Volume.reload`` (a no-op on a local folder).
        run_weights_function: Runs the CPU weights function (``force`` = full verify and repair)
            and returns its answer; ``.remote()`` on Modal, ``.local()`` in tests.
        in_container: Whether this runs in a Modal container (``not modal.is_local()``).
        job_records: The app's state ``modal.Dict`` (job outcome records), or ``None``.
        current_call_id: ``modal.current_function_call_id``.
        fetcher: Makes the Hub client (the update check, LoRA adapter downloads).
    """

    def __init__(
        self,
        settings: DeploySettings,
        *,
        open_store: Callable[[], WeightStore],
        volume_reload: Callable[[], None],
        run_weights_function: Callable[[bool], dict[str, Any]],
        in_container: Callable[[], bool],
        job_records: Any,
        current_call_id: Callable[[], str | None],
        fetcher: Callable[[], Any],
    ) -> None:
        from jaguar_sdk.server import JaguarService

        self.settings = settings
        self._open_store = open_store
        self._volume_reload = volume_reload
        self._run_weights_function = run_weights_function
        self._in_container = in_container
        self._job_records = job_records
        self._current_call_id = current_call_id
        self._fetcher = fetcher
        self._engine: Engine | None = None
        self.weights_from = "volume"
        self.revision_current: str | None = None
        self.restored = False
        self.gpu_name: str | None = None
        self.timings: dict[str, float] = {}  # this container's own
        self.snapshot_timings: dict[str, float] = {}  # the phase before the snapshot
        self._task_at_load: str | None = None
        #: Who asked for CUDA before the snapshot (answered "no GPU" without asking the driver).
        self.cuda_queries_answered: list[str] = []
        self._update_checker: UpdateChecker | None = None
        self.service: JaguarService = JaguarService(
            self._current_engine, reloader=self._reload_engine
        )

    # --- 1. before the snapshot ---------------------------------------------------------------
    def load_to_cpu(self) -> None:
        """Find the weights and load them into host RAM, asking nothing of CUDA.

        With ``JAGUAR_SNAPSHOT=gpu`` the GPU is visible here: the model goes to it and is warmed
        up, so the GPU snapshot holds the ready state.

        Raises:
            WeightsMissingError: The weights are not on the Volume (``on_missing_weights=fail``).
        """
        s = self.settings
        started = time.perf_counter()
        self._task_at_load = os.environ.get(TASK_ID_ENV)
        with self._cpu_phase():
            got, source = self._locate()
            self.snapshot_timings["ensure_s"] = time.perf_counter() - started
            self._engine = self._load(got, source)
        self.snapshot_timings["load_s"] = self._engine.load_timings.get("load_s", 0.0)
        self.weights_from = source
        if s.snapshot == "gpu":
            self._require_gpu()
            self._to_device(self._engine)

    @contextlib.contextmanager
    def _cpu_phase(self) -> Iterator[None]:
        """No CUDA query while loading before a CPU memory snapshot (engine/_snapshot.py)."""
        if self.settings.snapshot != "cpu":
            yield
            return
        from jaguar_sdk.engine import no_cuda_query

        with no_cuda_query() as guard:
            yield
        self.cuda_queries_answered = list(guard.queries)

    def _locate(self) -> tuple[EnsureResult, str]:
        """The weights on the Volume, fetched through the weights function where allowed."""
        s = self.settings
        store = self._open_store()
        got = find_weights(store, s, self._volume_reload)
        if got is not None:
            self.revision_current = got.revision
            return got, "volume"
        if s.on_missing_weights != "download":
            raise WeightsMissingError(missing_message(s))
        answer = self._run_weights_function(False)
        got = self._find_or_fail(store)
        self.revision_current = got.revision
        return got, str(answer.get("source") or "volume")

    def _find_or_fail(self, store: WeightStore) -> EnsureResult:
        """The weights on the Volume (:func:`find_weights`), else the missing-weights error."""
        got = find_weights(store, self.settings, self._volume_reload)
        if got is None:
            raise WeightsMissingError(missing_message(self.settings))
        return got

    def _load(self, got: EnsureResult, source: str) -> Engine:
        from jaguar_sdk.engine import Engine

        ref = ModelRef(
            id=self.settings.model_id,
            revision=got.revision,
            source="huggingface" if source == "huggingface" else "volume",
        )
        # On Modal name the dtype: no "is there a GPU?" question before the snapshot. Read every
        # weight into RAM unless snapshots are off (a mapping of a Volume file is not the bytes).
        dtype = "bfloat16" if self._in_container() else "float32"
        # LoRA adapters: downloaded once into the same Volume (adapters/), verified, cached.
        from jaguar_sdk.weights import AdapterStore

        adapters = AdapterStore(self._open_store(), fetcher=self._fetcher())
        return Engine.load_to_cpu(
            got.path,
            dtype=dtype,
            model_ref=ref,
            mmap=self.settings.snapshot == "off",
            adapters=adapters,
        )

    # --- 2. after the restore -----------------------------------------------------------------
    def to_gpu(self) -> None:
        """Check CUDA, re-read ``CURRENT``, move to the GPU, compile if asked, warm up.

        Raises:
            ConfigurationError: In a Modal container without a CUDA device (never serve on CPU).
            WeightsMissingError: The revision ``CURRENT`` names is not on the Volume.
        """
        started = time.perf_counter()
        s = self.settings
        task = os.environ.get(TASK_ID_ENV)
        self.restored = s.snapshot != "off" and task is not None and task != self._task_at_load
        self._require_gpu()
        engine = self._current_engine()
        reread = time.perf_counter()
        got = self._find_or_fail(self._open_store())
        self.timings["reread_s"] = time.perf_counter() - reread
        self.revision_current = got.revision
        if got.revision != engine.model_ref.revision:
            logger.info(
                "CURRENT moved from %s to %s since the snapshot; loading it",
                engine.model_ref.revision,
                got.revision,
            )
            engine.close()  # host RAM holds one copy at a time
            self._engine = engine = self._load(got, "volume")
            self.weights_from = "volume"
            self._to_device(engine)
        else:
            if self.restored:
                self.weights_from = "snapshot"
            if s.snapshot != "gpu":
                self._to_device(engine)
        self.service.start()
        self.timings["after_restore_s"] = time.perf_counter() - started

    def _require_gpu(self) -> None:
        if not self._in_container():
            return  # `.local()` in tests: CPU
        from jaguar_sdk.engine import require_cuda

        self.gpu_name = require_cuda(f"JAGUAR_GPU={self.settings.gpu}")

    def _to_device(self, engine: Engine) -> None:
        s = self.settings
        # (compile caches: TORCHINDUCTOR_CACHE_DIR/TRITON_CACHE_DIR point at the Volume, image env)
        engine.to_device("cuda" if self._in_container() else None, compile=s.compile, fp8=s.fp8)
        engine.warmup(serving_shape=s.compile)
        if s.compile:
            # Keep the compile caches for the next container; a failed commit only costs that.
            self._open_store().safe_commit()

    def _current_engine(self) -> Engine:
        if self._engine is None:
            from jaguar_sdk import NotReadyError

            raise NotReadyError("The model is not loaded in this container.")
        return self._engine

    def _reload_engine(self) -> EngineLike:
        """``reload``: the weights function verifies every byte (and repairs), then a fresh engine
        is loaded; the service keeps serving the old one until it is swapped in."""
        answer = self._run_weights_function(True)
        got = self._find_or_fail(self._open_store())
        source = str(answer.get("source") or "volume")
        engine = self._load(got, source)
        self._to_device(engine)
        self._engine = engine
        self.weights_from = source
        self.revision_current = got.revision
        return engine

    # --- 3. the Modal methods -----------------------------------------------------------------
    def call(self, operation: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        """Run a Modal method on plain data (errors come back as envelopes).

        A spawned job (``payload["job"]``) also leaves its outcome in the app's state Dict, so
        pollers learn it without downloading the images (``_modal_jobs.py``).
        """
        out = self.service.call_plain(operation, payload)
        if operation in ("info", "reload") and "error" not in out:
            out = self.describe(out)
        if operation == "generate" and isinstance(payload, dict) and payload.get("job"):
            self._record_outcome(out)
        return out

    def _record_outcome(self, out: dict[str, Any]) -> None:
        call_id = self._current_call_id()
        if not call_id or self._job_records is None:
            return
        try:
            self._job_records.put(job_key(call_id), outcome_record(out))
        except Exception as exc:  # pollers fall back to the call graph
            logger.warning("could not record the outcome of job %s: %s", call_id, exc)

    def describe(self, info: dict[str, Any]) -> dict[str, Any]:
        """Add what this container is to a ``ModelInfo`` dump (``info`` and ``reload``).

        ``load_timings`` become this container's own: after a restore, the load before the
        snapshot happened in another container and moves to ``extra["snapshot_timings"]``.
        """
        s = self.settings
        own = dict(info.get("load_timings") or {})
        if self.restored:
            own.pop("load_s", None)
        own.update(self.timings)
        info["load_timings"] = own
        extra = dict(info.get("extra") or {})
        extra.update(
            {
                "app": s.app_name,
                "gpu": self.gpu_name,
                "gpu_deployed": s.gpu,
                "snapshot": s.snapshot,
                "compile": s.compile,
                "fp8": s.fp8,
                "weights_from": self.weights_from,
                "revision_current": self.revision_current,
                "restored": self.restored,
                "snapshot_timings": dict(self.snapshot_timings),
                "update_check": self._update_check(str(info.get("model", {}).get("revision"))),
            }
        )
        info["extra"] = extra
        return info

    def _update_check(self, revision: str) -> Any:
        from jaguar_sdk.weights import UpdateChecker, followed_branch

        if self._update_checker is None:
            s = self.settings
            self._update_checker = UpdateChecker(
                s.model_id,
                followed_branch(s.model_revision),
                self._fetcher,
                ttl_s=UPDATE_CHECK_TTL_S,
            )
        return self._update_checker.check(revision)

    def close(self) -> None:
        """At shutdown: release the engine."""
        self.service.close()
        if self._engine is not None:
            self._engine.close()
