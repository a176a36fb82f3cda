"""How the migration tools and the domain invariants read from a server: batches of a few
thousand documents, one fetched ahead. Infrastructure: gamification reads through it too.

READ_BATCH_DOCUMENTS: a cursor batch holds up to this many documents (and 16 MB: the server caps
a batch there), so a far server costs few round trips while memory stays bounded, whatever the
size of a collection. No Django here: bench/floors.py reads with the same batches.

:func:`prefetched`: a cursor's ``getMore`` waits for the network and the server, our code for the
CPU; one after the other they add up, on loopback (the server runs on another core) and more so
when the server is far away. :func:`prefetched` fetches the next item in a thread of its own
while the caller uses the last, so the two overlap. Memory stays bounded: two batches are alive,
the one in use and the next. The thread blocks in socket reads, which release the GIL, so it
costs the caller almost no CPU. :func:`documents_read_ahead` is a find read that way, decoded.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import bson

# ~1.3 MB of our documents (200-470 bytes each): 20 getMores for 100,000 documents where 2,000
# took 50, and a peak RSS that stays flat with the size (10,000 grew 1.17x from 20k to 100k
# documents, 20,000 1.55x: two batches are alive at a time, and at 20k a collection is one batch).
READ_BATCH_DOCUMENTS = 5_000
T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(source: Iterable[T], *, depth: int = 1) -> Iterator[T]:
    """The items of ``source`` in order, each fetched in a background thread while the caller
    uses the one before: at most ``depth`` items fetched and not yet taken.

    With ``depth=1`` two items are alive at a time, the one in use and the next. An exception
    raised by ``source`` is raised here, at the item where it happened. Closing the returned
    generator early (or an exception in the caller) stops the thread before its next item;
    ``source`` is then closed from that thread, where it was used.
    """
    items: queue.Queue = queue.Queue()
    slots = threading.Semaphore(depth)  # taken before an item is fetched, given back when it is used
    stop = threading.Event()

    def slot() -> bool:
        while not stop.is_set():
            if slots.acquire(timeout=0.1):
                return True
        return False

    def fetch() -> None:
        iterator = iter(source)
        try:
            while slot():
                try:
                    item = next(iterator)
                except StopIteration:
                    items.put(_DONE)
                    return
                items.put(item)
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(_Failed(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=fetch, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            slots.release()
            yield item
    finally:
        stop.set()
        thread.join()


def documents_read_ahead(
    collection,
    filter: dict | None = None,
    *,
    sort,
    batch_size: int,
    on_batch: Callable[[bytes], None] | None = None,
) -> Iterator[dict]:
    """The documents of a find on ``collection`` (a PyMongo collection), decoded with its codec
    options, each batch of ``batch_size`` fetched in a thread while the caller uses the one before.
    ``on_batch(raw)`` sees each batch as the server sent it (BSON documents back to back) first.

    Closing the generator stops the thread; PyMongo errors are raised here.
    """
    batches = collection.find_raw_batches(filter or {}, sort=sort, batch_size=batch_size)
    with contextlib.closing(prefetched(batches)) as ahead:
        for batch in ahead:
            if on_batch is not None:
                on_batch(batch)
            yield from bson.decode_all(batch, collection.codec_options)
