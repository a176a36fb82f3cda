"""Read-ahead: items in order, errors where they happened, bounded, and stopped when the reader stops."""

import threading
import time

import pytest

from studymaster.reading import documents_read_ahead, prefetched


def test_items_come_in_order_and_the_source_runs_in_another_thread():
    threads = []

    def source():
        for n in range(100):
            threads.append(threading.current_thread())
            yield n

    assert list(prefetched(source(), depth=3)) == list(range(100))
    assert threading.current_thread() not in threads


def test_an_error_in_the_source_is_raised_at_its_place():
    def source():
        yield 1
        yield 2
        raise ConnectionError("getMore failed")

    got = []
    with pytest.raises(ConnectionError, match="getMore failed"):
        for item in prefetched(source()):
            got.append(item)
    assert got == [1, 2]


def test_it_reads_at_most_depth_ahead_and_stops_when_the_reader_stops():
    produced, closed = [], threading.Event()

    def source():
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    reader = prefetched(source(), depth=2)
    assert next(reader) == 0
    time.sleep(0.3)  # time enough to run far ahead, were it unbounded
    assert len(produced) <= 1 + 2 + 1  # the one read, the queue, the one waiting to be queued
    reader.close()
    assert closed.wait(2) and len(produced) < 10


def test_documents_read_ahead_decodes_every_batch_in_order_and_stops_its_thread(local_db):
    collection = local_db.db["items"]
    collection.insert_many([{"_id": n, "n": n} for n in range(25)])
    documents = documents_read_ahead(collection, {"n": {"$gte": 5}}, sort=[("_id", -1)], batch_size=4)
    assert [document["n"] for document in documents] == list(range(24, 4, -1))
    reader = documents_read_ahead(collection, sort=[("_id", 1)], batch_size=4)
    assert next(reader) == {"_id": 0, "n": 0}
    reader.close()
    assert not [thread for thread in threading.enumerate() if thread.name == "prefetch"]
