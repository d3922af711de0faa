"""Dynamic batching: concurrent single-image requests share one ONNX Runtime run.

One inference thread owns single-image inference under load. The event loop hands it a
preprocessed image and awaits a future; the thread takes everything queued (up
to ``max_batch``), runs it as one batch, and resolves all the futures with one
call back into the loop. Under load, images that arrive while a batch runs form
the next batch by themselves; ``max_wait`` may additionally hold a batch open,
but only while other requests are already being received, so one client alone
never waits.

A lone request skips the hand-off: when no other HTTP request is in flight
and nothing is queued or running, the image runs right on the event loop
(:meth:`_Arrival.classify`). Nobody else is there to be blocked,
and the two thread switches (about 0.35 ms) were the largest single cost of a
one-client request.

Why a dedicated thread instead of the thread pool: ONNX Runtime releases the
GIL, so inference runs on the second core while the loop parses the next
request; a single consumer also means one loop wake-up per batch rather than
per image.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger("service.batching")


class BatcherClosed(RuntimeError):
    """The batcher was stopped; no more work is accepted."""


@dataclass(slots=True)
class _Job:
    image: np.ndarray
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop


class MicroBatcher:
    """Gathers single images into batches of at most ``max_batch`` for one inference thread.

    ``max_batch`` 1 switches batching off: every image is its own run, still on
    the inference thread, so the two modes differ only in the gathering.
    """

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        buffer: np.ndarray,
        *,
        max_batch: int,
        max_wait: float,
        others_in_flight: Callable[[], bool] = lambda: False,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if len(buffer) < max_batch:
            raise ValueError("the buffer must hold max_batch images")
        #: Runs a preprocessed batch (the engine's timed inference); the only way to the model.
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait)
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        #: Whether the service has other HTTP requests in flight; the engine passes the request
        #: middleware's count (:attr:`service.metrics.Metrics.requests_in_flight`).
        self._others_in_flight = others_in_flight
        #: True from the moment the thread takes jobs until their futures are handed back.
        self._busy = False
        #: Images run on the loop by a lone request (exported to ``/model`` and the tests).
        self.alone_runs = 0
        #: Requests between "body received" and "image queued"; only their
        #: arrival is worth holding a batch open for.
        self.arriving = 0
        #: Requests from "body received" until their probabilities are back, waiting ones included.
        self.active = 0
        self._buffer = buffer
        self._thread = threading.Thread(target=self._run, name="lpr-batcher", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray, *, arrived: bool = False) -> asyncio.Future[np.ndarray]:
        """Queue one preprocessed image (shape ``spec.shape``); resolves to its probabilities row.

        ``arrived`` ends the caller's :meth:`arrival` in the same lock, so the
        inference thread is woken once, not once for the image and once more
        for the arrival count.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        with self._cond:
            if self._closed:
                raise BatcherClosed("the service is shutting down")
            if arrived:
                self.arriving -= 1
            self._queue.append(_Job(image, future, loop))
            self._cond.notify()
        return future

    @contextmanager
    def arrival(self) -> Iterator[_Arrival]:
        """Mark a request whose image is on its way, for as long as it is being prepared."""
        with self._cond:
            self.arriving += 1
            self.active += 1
        handle = _Arrival(self)
        try:
            yield handle
        finally:
            with self._cond:
                self.active -= 1
                if not handle.submitted:
                    self.arriving -= 1
                    self._cond.notify()

    def _gather(self) -> list[_Job] | None:
        """Block for the first job, then take what is queued; ``None`` once closed and drained."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            if self.max_wait > 0 and len(self._queue) < self.max_batch and self.arriving > 0:
                deadline = time.monotonic() + self.max_wait
                while len(self._queue) < self.max_batch and self.arriving > 0 and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            count = min(self.max_batch, len(self._queue))
            self._busy = True
            return [self._queue.popleft() for _ in range(count)]

    def could_run_alone(self) -> bool:
        """A lock-free first look: is the caller the only work in sight? (:meth:`claim_alone` decides.)"""
        return self.active == 1 and not self._queue and not self._busy and not self._others_in_flight()

    def claim_alone(self) -> bool:
        """Whether the caller, the only work in sight, may run its image itself.

        The caller must be the only HTTP request in the service, the only
        active one here, the queue empty and the thread idle: with company,
        the hand-off is what lets inference overlap the next request's
        preparation on the other core. The caller's arrival then ends, as
        with :meth:`submit`. Shutdown still refuses new work.
        """
        with self._cond:
            if self._closed:
                raise BatcherClosed("the service is shutting down")
            if not self.could_run_alone():  # the same look, now under the lock
                return False
            self.arriving -= 1
            self.alone_runs += 1
            return True

    def _run(self) -> None:
        while (jobs := self._gather()) is not None:
            try:
                batch = self._buffer[: len(jobs)]
                for row, job in enumerate(jobs):
                    batch[row] = job.image
                probabilities = self.run(batch)  # a fresh array per run
            except Exception as exc:  # resolve every waiter; the thread must outlive one bad run
                logger.exception("batched inference failed for %d images", len(jobs))
                self._finish(jobs, None, exc)
                continue
            self._finish(jobs, probabilities, None)

    def _finish(
        self, jobs: list[_Job], probabilities: np.ndarray | None, error: BaseException | None
    ) -> None:
        self._deliver(jobs, probabilities, error)
        with self._cond:
            self._busy = False

    @staticmethod
    def _deliver(jobs: list[_Job], probabilities: np.ndarray | None, error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[np.ndarray], int]]] = {}
        for row, job in enumerate(jobs):
            by_loop.setdefault(job.loop, []).append((job.future, row))
        for loop, futures in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, futures, probabilities, error)

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting work, finish what is queued, then end the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)


class _Arrival:
    """A request counted in :attr:`MicroBatcher.arriving` until it submits its image."""

    __slots__ = ("batcher", "submitted")

    def __init__(self, batcher: MicroBatcher) -> None:
        self.batcher = batcher
        self.submitted = False

    async def classify(self, image: np.ndarray) -> np.ndarray:
        """The prepared image's probabilities row: run at once when alone, else batched."""
        batcher = self.batcher
        if batcher.could_run_alone():
            # Requests already received only count once their task starts: let them run up
            # to this point first, or under load every request would look alone.
            await asyncio.sleep(0)
            if batcher.claim_alone():
                self.submitted = True
                return batcher.run(image[None])[0]
        future = self.batcher.submit(image, arrived=True)
        self.submitted = True
        return await future


def _resolve(
    futures: list[tuple[asyncio.Future[np.ndarray], int]],
    probabilities: np.ndarray | None,
    error: BaseException | None,
) -> None:
    for future, row in futures:
        if future.done():  # the request was cancelled (client went away)
            continue
        if error is not None:
            future.set_exception(error)
        else:
            assert probabilities is not None
            future.set_result(probabilities[row])
