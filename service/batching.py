"""Dynamic batching of ``/predict``: a wrapper around the character model's runner.

Concurrent single-image requests share one inference. The event loop queues a
preprocessed image and awaits a future; a drain on the runner's worker thread
(:meth:`service.runner.Runner.post`) takes everything queued (up to
``max_batch``), runs it as one batch through the runner, resolves all the
futures with one call back into the loop, and goes on while images keep
coming. Under load, images that arrive while a batch runs form the next batch
by themselves; ``max_wait`` may additionally hold a batch open, but only while
other requests are already being received, so one client alone never waits.

A lone request skips the hand-off: when it is the runner's only caller and
nothing is queued or draining, its image runs right on the event loop
(:meth:`_Arrival.classify`); the two thread switches (about 0.35 ms) were the
largest single cost of a one-client request. "Only caller" is the runner's own
count (:attr:`service.runner.Runner.active`): a batch or a plate being read
counts, what else the service answers (a ``/metrics`` scrape, a probe) does not.

Why the worker instead of the thread pool: ONNX Runtime releases the GIL, so
inference runs on the second core while the loop parses the next request; one
consumer also means one loop wake-up per batch rather than per image, and the
model's one worker serialises ``/predict`` batches with the chunks of
``/predict/batch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Condition

import numpy as np

from service.runner import Runner

logger = logging.getLogger("service.batching")


class BatcherClosed(RuntimeError):
    """The batcher was stopped; no more work is accepted."""


@dataclass(slots=True)
class _Job:
    image: np.ndarray
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop


class MicroBatcher:
    """Gathers single images into batches of at most ``max_batch`` for the runner's worker.

    ``max_batch`` 1 switches batching off: every image is its own run, still on
    the worker, so the two modes differ only in the gathering.
    """

    def __init__(self, runner: Runner, buffer: np.ndarray, *, max_batch: int, max_wait: float) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if len(buffer) < max_batch:
            raise ValueError("the buffer must hold max_batch images")
        #: The character model's runner: the only way to the model, and the count of its callers.
        self.runner = runner
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait)
        self._queue: deque[_Job] = deque()
        self._cond = Condition()
        self._closed = False
        #: True from the moment a drain is posted to the worker until it finds the queue empty.
        self._draining = False
        #: Images run on the loop by a lone request (exported to ``/model`` and the tests).
        self.alone_runs = 0
        #: Requests between "body received" and "image queued"; only their
        #: arrival is worth holding a batch open for.
        self.arriving = 0
        self._buffer = buffer

    def submit(self, image: np.ndarray, *, arrived: bool = False) -> asyncio.Future[np.ndarray]:
        """Queue one preprocessed image (shape ``spec.shape``); resolves to its probabilities row.

        ``arrived`` ends the caller's :meth:`arrival` in the same lock, so a
        drain holding its batch open is woken once, not once for the image and
        once more for the arrival count.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        with self._cond:
            if self._closed:
                raise BatcherClosed("the service is shutting down")
            if arrived:
                self.arriving -= 1
            self._queue.append(_Job(image, future, loop))
            if self._draining:
                self._cond.notify()
                return future
            self._draining = True
        self.runner.post(self._drain)
        return future

    @contextmanager
    def arrival(self) -> Iterator[_Arrival]:
        """Mark a request whose image is on its way, and count it as the runner's caller until answered."""
        self.runner.enter()
        with self._cond:
            self.arriving += 1
        handle = _Arrival(self)
        try:
            yield handle
        finally:
            if not handle.submitted:
                with self._cond:
                    self.arriving -= 1
                    self._cond.notify()
            self.runner.leave()

    def _take(self) -> list[_Job] | None:
        """What is queued, up to ``max_batch``; ``None`` (and the drain ends) once the queue is empty."""
        with self._cond:
            if not self._queue:
                self._draining = False
                self._cond.notify_all()  # close() waits for the drain to end
                return None
            if self.max_wait > 0 and len(self._queue) < self.max_batch and self.arriving > 0:
                deadline = time.monotonic() + self.max_wait
                while len(self._queue) < self.max_batch and self.arriving > 0 and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            count = min(self.max_batch, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def _drain(self) -> None:
        """On the runner's worker: run what is queued, batch after batch, until nothing is left."""
        while (jobs := self._take()) is not None:
            try:
                batch = self._buffer[: len(jobs)]
                for row, job in enumerate(jobs):
                    batch[row] = job.image
                probabilities = self.runner.run(batch)  # a fresh array per run
            except Exception as exc:  # resolve every waiter; the drain must outlive one bad run
                logger.exception("batched inference failed for %d images", len(jobs))
                _deliver(jobs, None, exc)
                continue
            _deliver(jobs, probabilities, None)

    def could_run_alone(self) -> bool:
        """A lock-free first look: is the caller the only work in sight? (:meth:`claim_alone` decides.)"""
        return self.runner.active == 1 and not self._queue and not self._draining

    def claim_alone(self) -> bool:
        """Whether the caller, the only work in sight, may run its image itself.

        The caller must be the runner's only caller, the queue empty and no
        drain running: with company, the hand-off is what lets inference
        overlap the next request's preparation on the other core. The caller's
        arrival then ends, as with :meth:`submit`. Shutdown still refuses new
        work.
        """
        with self._cond:
            if self._closed:
                raise BatcherClosed("the service is shutting down")
            if not self.could_run_alone():  # the same look, now under the lock
                return False
            self.arriving -= 1
            self.alone_runs += 1
            return True

    def info(self) -> dict[str, float | int | bool]:
        """``GET /model``'s ``runtime.batching``."""
        return {
            "enabled": self.max_batch > 1,
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait * 1000.0,
            "alone_runs": self.alone_runs,
        }

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting work and wait for what is queued to run."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._draining, timeout)


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
                return batcher.runner.run(image[None])[0]
        future = self.batcher.submit(image, arrived=True)
        self.submitted = True
        return await future


def _deliver(jobs: list[_Job], probabilities: np.ndarray | None, error: BaseException | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[np.ndarray], int]]] = {}
    for row, job in enumerate(jobs):
        by_loop.setdefault(job.loop, []).append((job.future, row))
    for loop, futures in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, futures, probabilities, error)


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
