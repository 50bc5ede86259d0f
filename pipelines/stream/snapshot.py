"""Persisted state of a stopped replay: every keyed stage's state, per key, as files.

On Dataflow and Flink the runner persists state (a drain and ``--update``, a
savepoint); nothing here is needed there. A replay stops when its logs end;
with ``--checkpoint-dir`` each key of each keyed stage writes its state there
when the watermark passes the last tick (``keyed.KeyedStageFn.on_export``),
and a later replay with ``--restore-dir`` loads it back before its first
tick. The files hold ``codec`` chunks only (the same bytes Beam keeps in
state): no pickled objects and no configuration, which ``check_config``
compares instead.

File layout: ``DIR/config.json`` and ``DIR/STAGE/KEY.state``, a sequence of
records ``(state name, chunk)``: ``DRS1``, then per record a uint32 name length,
the name, a uint64 chunk length and the encoded chunk.
"""

from __future__ import annotations

import json
import os
import struct

from distill_radar.pipelines.stream.codec import decode_chunk, encode_chunk

MAGIC = b"DRS1"


def state_path(folder: str, stage: str, key: int) -> str:
    return os.path.join(folder, stage, f"{int(key)}.state")


def write_state(path: str, records: list[tuple[str, dict]]) -> None:
    """Write (state name, chunk) records (atomically: a temporary name, then rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(MAGIC)
        for name, chunk in records:
            data = encode_chunk(chunk)
            raw = name.encode()
            fh.write(struct.pack("<I", len(raw)) + raw + struct.pack("<Q", len(data)))
            fh.write(data)
    os.replace(tmp, path)


def read_state(path: str) -> list[tuple[str, dict]]:
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a distill-radar state file")
    records, pos = [], 4
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        name = data[pos + 4:pos + 4 + n].decode()
        (size,) = struct.unpack_from("<Q", data, pos + 4 + n)
        start = pos + 12 + n
        records.append((name, decode_chunk(data[start:start + size])))
        pos = start + size
    return records


def saved_keys(folder: str) -> list[tuple[str, int, str]]:
    """(stage, key, path) of every saved key, in a stable order."""
    out = []
    for stage in sorted(os.listdir(folder)):
        sub = os.path.join(folder, stage)
        if not os.path.isdir(sub):
            continue
        for name in sorted(os.listdir(sub)):
            if name.endswith(".state"):
                out.append((stage, int(name[:-len(".state")]), os.path.join(sub, name)))
    return out


def write_config(folder: str, config: dict) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump(config, fh, indent=1, sort_keys=True)


def check_config(folder: str, config: dict) -> None:
    """The restored state was written with the same parameters (a clear error if not)."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no saved streaming state in {folder} (config.json missing)")
    with open(path) as fh:
        saved = json.load(fh)
    changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
    if changed:
        raise ValueError(f"the state in {folder} was written with other parameters: "
                         f"{', '.join(changed)}")
