"""Run a producer (decoding and preprocessing) on a thread of its own, a bounded number of items
ahead of its consumer (the engine), so that the two overlap: PyAV, the image kernels and the
engines release the GIL while they work."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import torch

T = TypeVar("T")
_DONE = object()
_POLL_SECONDS = 0.05  # how often a producer blocked on a full queue checks for an early stop


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(ready: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` into ``ready``, waiting while it is full; False when ``stop`` came first."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def single_threaded_torch() -> None:
    """Run this thread's torch kernels on this thread alone (a per-thread setting). For a thread
    that decodes and preprocesses beside a torch engine: a second OpenMP team there fought the
    engine's for the cores (the engine's step took 2-3x as long)."""
    torch.set_num_threads(1)


def _produce(items: Iterable[Any], ready: queue.Queue, stop: threading.Event) -> None:
    """Producer thread: every item into ``ready``, then the end mark or the error that ended it;
    stops early, closing ``items``, once ``stop`` is set; its torch kernels run single-threaded."""
    single_threaded_torch()
    iterator = iter(items)
    try:
        for item in iterator:
            if not _put(ready, item, stop):
                return
        _put(ready, _DONE, stop)
    except BaseException as error:  # handed to the consumer, which raises it
        _put(ready, _Failed(error), stop)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # a generator's clean-up (closing a video) runs on the thread that ran it


def prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items`` in order, made on a background thread up to ``depth`` items ahead; ``depth`` 0:
    made in the caller's thread, one at a time. An error raised while making them is raised here
    when its turn comes; stopping early (``break``, ``close()``) stops and joins the thread."""
    if depth < 1:
        yield from items
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(items, ready, stop), name="tsm-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
