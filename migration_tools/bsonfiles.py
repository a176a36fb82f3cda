"""Raw BSON on disk and on the wire: framing, hashing, and MongoDB's sort order for ``_id``.

Documents are handled as raw bytes (``RawBSONDocument``) end to end, so nothing is
decoded into Python values and re-encoded: types, field order, NaN and -0.0 survive
byte for byte, and two documents are equal exactly when their bytes are.
"""

from __future__ import annotations

import decimal
import functools
import gzip
import hashlib
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument

RAW = CodecOptions(
    document_class=RawBSONDocument, tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO
)
DECODE = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024  # the server's limit plus command overhead
_LENGTH = struct.Struct("<i")
HASH_MODULUS = 2**256


class DamagedDumpError(Exception):
    """A dump file is truncated, mis-framed or does not match its checksum; names the file."""


def open_read(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # noqa: SIM115


READ_BYTES = 1 << 20


def _read(stream, size: int, path: Path) -> bytes:
    try:
        return stream.read(size)
    except (OSError, EOFError) as exc:
        raise DamagedDumpError(f"{path}: cannot be read ({exc}).") from None


def iter_raw_documents(path: Path) -> Iterator[bytes]:
    """Yield each document of a ``.bson``/``.bson.gz`` file as bytes; check the framing.

    Reads the file in blocks of a megabyte (two reads per document cost more than the
    rest of a restore's client side). Raises DamagedDumpError naming the file at the
    first bad length or truncation.
    """
    with open_read(path) as stream:
        yield from frame_documents(lambda size: _read(stream, size, path), path)


def frame_documents(read: Callable[[int], bytes], where, *, base: int = 0) -> Iterator[bytes]:
    """Yield the BSON documents, back to back, that ``read(size)`` returns in blocks (b"" at the end).

    ``where`` names the source in errors, ``base`` is the offset of its first byte there.
    Raises DamagedDumpError at the first bad length, missing terminator or truncation.
    """
    pending = b""  # bytes read but not yet yielded, starting at offset ``base``
    wanted = READ_BYTES
    while True:
        chunk = read(wanted)
        data = pending + chunk if pending else chunk
        pos, end, wanted = 0, len(data), READ_BYTES
        while end - pos >= 4:
            (length,) = _LENGTH.unpack_from(data, pos)
            if length < 5 or length > MAX_DOCUMENT_BYTES:
                raise DamagedDumpError(f"{where}: bad document length {length} at byte {base + pos}.")
            if end - pos < length:
                wanted = max(READ_BYTES, length - (end - pos))
                break
            if data[pos + length - 1] != 0:
                raise DamagedDumpError(f"{where}: the document at byte {base + pos} is not terminated.")
            yield data[pos : pos + length]
            pos += length
        pending, base = data[pos:], base + pos
        if not chunk:
            break
    if len(pending) >= 4:
        (length,) = _LENGTH.unpack_from(pending)
        raise DamagedDumpError(
            f"{where}: truncated at byte {base}: a {length}-byte document has only {len(pending)} bytes."
        )
    if pending:
        raise DamagedDumpError(f"{where}: truncated at byte {base} (a partial length prefix).")


def split_documents(batch: bytes) -> Iterator[memoryview]:
    """The documents of a server batch (``find_raw_batches``): BSON documents back to back."""
    view, pos, end = memoryview(batch), 0, len(batch)
    while pos < end:
        (length,) = _LENGTH.unpack_from(batch, pos)
        yield view[pos : pos + length]
        pos += length


class ContentHash:
    """An order-independent hash of a set of documents: the sum of their SHA-256, mod 2**256."""

    def __init__(self) -> None:
        self.total = 0
        self.count = 0
        self.bytes = 0

    def add(self, raw) -> None:
        # Reduced once, in hexdigest(): the sum of a million 256-bit numbers is only 276 bits.
        self.total += int.from_bytes(hashlib.sha256(raw).digest(), "big")
        self.count += 1
        self.bytes += len(raw)

    def add_batch(self, batch: bytes) -> None:
        """Add every document of ``batch`` (documents back to back)."""
        for raw in split_documents(batch):
            self.add(raw)

    def hexdigest(self) -> str:
        return f"{self.total % HASH_MODULUS:064x}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- MongoDB's comparison order, for merging two streams sorted by _id -------------------------
_NUMBER, _STRING, _OBJECT, _ARRAY = 3, 4, 5, 6


def bson_rank(value) -> int:
    if isinstance(value, bson.MinKey):
        return 1
    if value is None:
        return 2
    if isinstance(value, bool):
        return 9
    if isinstance(value, int | float | bson.Decimal128):
        return _NUMBER
    if isinstance(value, str):
        return _STRING
    if isinstance(value, bson.DBRef | dict | RawBSONDocument):
        return _OBJECT
    if isinstance(value, list | tuple):
        return _ARRAY
    if isinstance(value, bytes | bson.Binary):
        return 7
    if isinstance(value, bson.ObjectId):
        return 8
    if isinstance(value, bson.datetime_ms.DatetimeMS) or hasattr(value, "utcoffset"):
        return 10
    if isinstance(value, bson.Timestamp):
        return 11
    if isinstance(value, bson.Regex) or hasattr(value, "pattern"):
        return 12
    if isinstance(value, bson.Code):
        return 14 if value.scope is None else 15
    if isinstance(value, bson.MaxKey):
        return 16
    raise TypeError(f"no BSON order for {type(value).__name__}")


def _number(value) -> decimal.Decimal | None:
    """The exact numeric value; None stands for NaN, which sorts before every number."""
    if isinstance(value, bson.Decimal128):
        value = value.to_decimal()
        return None if value.is_nan() else value
    if isinstance(value, float):
        return None if value != value else decimal.Decimal(value)
    return decimal.Decimal(value)


def _cmp(a, b) -> int:
    return (a > b) - (a < b)


def bson_compare(a, b) -> int:
    """Compare two decoded BSON values as MongoDB sorts them (simple binary collation)."""
    rank_a, rank_b = bson_rank(a), bson_rank(b)
    if rank_a != rank_b:
        return _cmp(rank_a, rank_b)
    if rank_a == _NUMBER:
        x, y = _number(a), _number(b)
        if x is None or y is None:
            return _cmp(x is not None, y is not None)
        return _cmp(x, y)
    if rank_a == _STRING:
        return _cmp(a.encode(), b.encode())
    if rank_a == _OBJECT:
        items_a = list((a.as_doc() if isinstance(a, bson.DBRef) else a).items())
        items_b = list((b.as_doc() if isinstance(b, bson.DBRef) else b).items())
        for (key_a, val_a), (key_b, val_b) in zip(items_a, items_b, strict=False):
            result = (
                _cmp(bson_rank(val_a), bson_rank(val_b))
                or _cmp(key_a.encode(), key_b.encode())
                or bson_compare(val_a, val_b)
            )
            if result:
                return result
        return _cmp(len(items_a), len(items_b))
    if rank_a == _ARRAY:
        for val_a, val_b in zip(a, b, strict=False):
            result = bson_compare(val_a, val_b)
            if result:
                return result
        return _cmp(len(a), len(b))
    if rank_a == 7:
        sub_a = a.subtype if isinstance(a, bson.Binary) else 0
        sub_b = b.subtype if isinstance(b, bson.Binary) else 0
        return _cmp(len(a), len(b)) or _cmp(sub_a, sub_b) or _cmp(bytes(a), bytes(b))
    if rank_a == 8:
        return _cmp(a.binary, b.binary)
    if rank_a == 10:
        return _cmp(_millis(a), _millis(b))
    if rank_a == 11:
        return _cmp((a.time, a.inc), (b.time, b.inc))
    if rank_a == 12:
        return _cmp((a.pattern, _flags(a)), (b.pattern, _flags(b)))
    if rank_a in (14, 15):
        return _cmp(str(a), str(b)) or bson_compare(a.scope or {}, b.scope or {})
    return _cmp(a, b) if rank_a == 9 else 0


def _millis(value) -> int:
    if isinstance(value, bson.datetime_ms.DatetimeMS):
        return int(value)
    return bson.datetime_ms._datetime_to_millis(value)


def _flags(regex) -> str:
    flags = regex.flags
    return flags if isinstance(flags, str) else str(flags)


id_sort_key = functools.cmp_to_key(bson_compare)

_OBJECT_ID_FIRST = b"\x07_id\x00"


def document_id(raw: bytes):
    """The decoded ``_id`` of a raw document."""
    return RawBSONDocument(bytes(raw), RAW)["_id"]


def id_order_key(raw: bytes) -> tuple:
    """A key that orders raw documents by ``_id`` as MongoDB sorts them.

    An ObjectId stored first (every document the application writes) is read straight from
    the bytes, which sort as MongoDB sorts ObjectIds; any other ``_id`` is decoded and
    compared with bson_compare. Equal keys mean equal ``_id`` values (1 and 1.0 included).
    """
    if raw[4:9] == _OBJECT_ID_FIRST:
        return (8, bytes(raw[9:21]))
    value = document_id(raw)
    rank = bson_rank(value)
    return (rank, value.binary) if rank == 8 else (rank, id_sort_key(value))
