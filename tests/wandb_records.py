"""Read the records of a W&B run file (`run-<id>.wandb`) with wandb's own protobuf schema.

wandb >= 0.19 writes these files from its Go core and no longer ships a Python reader; the
container is LevelDB's log format (32 KiB blocks; 7-byte record headers: crc32, length, type),
after a 7-byte ':W&B' file header.
"""

from __future__ import annotations

import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending, records = HEADER, b"", []
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # the rest of a block too small for a header is padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            payload = chunk
        elif kind in (FIRST, MIDDLE):
            pending = chunk if kind == FIRST else pending + chunk
            continue
        elif kind == LAST:
            payload, pending = pending + chunk, b""
        else:  # zero-filled tail of the file
            break
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records
