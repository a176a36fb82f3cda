"""The raw-driver floors the migration commands are measured against.

Each runs as its own process (``python -m bench.floors <kind> ...``) so that its time and
peak RSS are measured exactly like a command's:

- export: ``find`` with RawBSONDocument, the bytes written straight to a file (and each
  collection's ``list_indexes`` beside it);
- import: ``insert_many`` of raw batches read back from those files, then ``createIndexes`` with
  the same indexes: the server's index build is work any restore must do, and on the embedded
  server it is most of an import, so a floor without it would measure the server, not our code;
- verify: a raw scan of both sides.

Every cursor and every insert batch is bounded like the commands' (cursor batches of
``studymaster.reading.READ_BATCH_DOCUMENTS``; inserts of 8 MB and 5,000 documents), so a
floor streams: its peak RSS does not grow with the data. It reads one batch after the other, with
no read-ahead: that is ours to add.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

from bson import json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from studymaster.reading import READ_BATCH_DOCUMENTS

RAW = CodecOptions(document_class=RawBSONDocument)
BATCH_BYTES = 8 * 1024 * 1024
BATCH_DOCUMENTS = 5000


def _collections(db):
    return sorted(name for name in db.list_collection_names() if not name.startswith("system."))


def export(uri: str, db_name: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with MongoClient(uri) as client:
        db = client[db_name]
        for name in _collections(db):
            with open(out / f"{name}.bson", "wb") as handle:
                cursor = db.get_collection(name, codec_options=RAW).find(batch_size=READ_BATCH_DOCUMENTS)
                for document in cursor:
                    handle.write(document.raw)
            indexes = [dict(index) for index in db[name].list_indexes() if index["name"] != "_id_"]
            (out / f"{name}.indexes.json").write_text(json_util.dumps(indexes))


def _read_raw(path: Path):
    with open(path, "rb") as handle:
        while header := handle.read(4):
            (size,) = struct.unpack("<i", header)
            yield RawBSONDocument(header + handle.read(size - 4))


def import_(uri: str, db_name: str, source: Path) -> None:
    with MongoClient(uri) as client:
        db = client[db_name]
        for path in sorted(source.glob("*.bson")):
            collection = db.get_collection(path.stem, codec_options=RAW)
            batch, batch_bytes = [], 0
            for document in _read_raw(path):
                batch.append(document)
                batch_bytes += len(document.raw)
                if batch_bytes >= BATCH_BYTES or len(batch) >= BATCH_DOCUMENTS:
                    collection.insert_many(batch, ordered=False)
                    batch, batch_bytes = [], 0
            if batch:
                collection.insert_many(batch, ordered=False)
            indexes = json_util.loads((source / f"{path.stem}.indexes.json").read_text())
            for index in indexes:
                index.pop("v", None), index.pop("ns", None)
            if indexes:
                db.command({"createIndexes": path.stem, "indexes": indexes})


def verify(source_uri: str, source_db: str, target_uri: str, target_db: str) -> None:
    with MongoClient(source_uri) as source, MongoClient(target_uri) as target:
        sides = [source[source_db], target[target_db]]
        for name in _collections(sides[0]):
            for db in sides:
                for _document in db.get_collection(name, codec_options=RAW).find(
                    batch_size=READ_BATCH_DOCUMENTS
                ):
                    pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("export")
    p.add_argument("uri"), p.add_argument("db"), p.add_argument("out", type=Path)
    p = sub.add_parser("import")
    p.add_argument("uri"), p.add_argument("db"), p.add_argument("source", type=Path)
    p = sub.add_parser("verify")
    (
        p.add_argument("source_uri"),
        p.add_argument("source_db"),
        p.add_argument("target_uri"),
        p.add_argument("target_db"),
    )
    args = parser.parse_args(argv)
    if args.kind == "export":
        export(args.uri, args.db, args.out)
    elif args.kind == "import":
        import_(args.uri, args.db, args.source)
    else:
        verify(args.source_uri, args.source_db, args.target_uri, args.target_db)


if __name__ == "__main__":
    main()
