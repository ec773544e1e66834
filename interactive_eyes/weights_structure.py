"""Cheap structural checks of model files whose hash cannot vouch for them.

A weight entry with an unconfirmed pin (or none) is accepted when its SHA-256 differs from the
pin, because nobody published a firm one. That must not extend to a file that cannot even be
parsed: a truncated ArcFace ``.onnx`` used to be accepted with a warning and then crashed every
``score`` inside onnxruntime (``InvalidProtobuf``). ``structure_problem(path)`` answers, in one
phrase, why a file is not a well-formed file of its format, or ``None``; it reads a few hundred
bytes (the protobuf's top-level field headers, a zip's central directory), not the whole file,
except for JSON, which is small and parsed in full.

| extension | format | what is checked |
|---|---|---|
| ``.onnx`` | ONNX ``ModelProto`` (protobuf) | the top-level fields tile the file exactly; ``ir_version`` (1) and ``graph`` (7) present |
| ``.pth`` ``.pt`` ``.bin`` ``.tar`` ``.ckpt`` | torch.save | a zip archive whose central directory reads (torch >= 1.6), or a pickle header (legacy) |
| ``.task`` ``.zip`` | zip (MediaPipe task bundle) | the central directory reads |
| ``.json`` | JSON | parses |
| ``.safetensors`` | safetensors | the 8-byte header length and the JSON header fit, the tensors end at the file's end |

Legacy (pre-1.6, non-zip) torch files are checked by their pickle header only: a truncation past
the header is not seen there, it surfaces when the file is loaded.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

# ONNX ModelProto: ir_version = 1 (varint), graph = 7 (message): required by every ONNX reader
_ONNX_REQUIRED = {1: "ir_version", 7: "graph"}
_MAX_FIELDS = 100_000  # a ModelProto has a handful of top-level fields; zero-filled junk would loop long


def _read_varint(fh) -> int | None:
    shift = value = 0
    for _ in range(10):  # a 64-bit varint has at most 10 bytes
        b = fh.read(1)
        if not b:
            return None
        value |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return value
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def protobuf_problem(path: str | os.PathLike, required: dict[int, str] | None = None) -> str | None:
    """Walk the top-level fields of a protobuf message file without decoding them.

    Each field is a tag (field number << 3 | wire type) and a payload whose length is known from
    the wire type, so the headers alone show whether the file ends exactly where the last field
    ends (a truncated file does not), and field number 0 never occurs (a zero-filled file starts
    with it).
    """
    size = Path(path).stat().st_size
    if size == 0:
        return "empty file"
    seen: set[int] = set()
    with open(path, "rb") as fh:
        for _ in range(_MAX_FIELDS):
            pos = fh.tell()
            if pos == size:
                break
            try:
                tag = _read_varint(fh)
            except ValueError as exc:
                return f"bad protobuf tag at byte {pos} ({exc})"
            if tag is None:
                return f"truncated protobuf tag at byte {pos}"
            number, wire = tag >> 3, tag & 7
            if number == 0:
                return f"invalid protobuf field number 0 at byte {pos} (zero-filled or not a protobuf)"
            if wire == 0:
                try:
                    ok = _read_varint(fh) is not None
                except ValueError as exc:
                    return f"bad varint of field {number} at byte {pos} ({exc})"
                need = 0 if ok else 1
            elif wire == 1:
                need = 8
            elif wire == 5:
                need = 4
            elif wire == 2:
                try:
                    length = _read_varint(fh)
                except ValueError as exc:
                    return f"bad length of field {number} at byte {pos} ({exc})"
                need = 1 if length is None else length
            else:  # 3/4 (groups) are not used by these formats; 6/7 do not exist
                return f"unexpected protobuf wire type {wire} (field {number}) at byte {pos}"
            left = size - fh.tell()
            if need > left:
                return f"truncated: field {number} at byte {pos} needs {need} bytes, {left} left (file is {size} bytes)"
            fh.seek(need, os.SEEK_CUR)
            seen.add(number)
        else:
            return f"more than {_MAX_FIELDS} top-level protobuf fields (not a model file)"
    missing = [f"{name} ({num})" for num, name in (required or {}).items() if num not in seen]
    if missing:
        return "required field(s) missing: " + ", ".join(missing)
    return None


def zip_problem(path: str | os.PathLike) -> str | None:
    """A zip whose end-of-central-directory record and directory read (both sit at the end, so a
    truncated or zero-filled file fails here), and whose members lie inside the file."""
    size = Path(path).stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"not a readable zip archive ({exc})"
    if not infos:
        return "zip archive without members"
    for info in infos:
        if info.header_offset + info.compress_size > size:
            return f"zip member {info.filename} extends past the end of the file"
    return None


def torch_problem(path: str | os.PathLike) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:4] == b"PK\x03\x04":
        return zip_problem(path)
    # torch.save before 1.6: pickle protocol 2 opcode PROTO (0x80) and the protocol number
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return None
    return f"neither a torch zip archive nor a pickle (starts with {head.hex() or 'nothing'})"


def json_problem(path: str | os.PathLike) -> str | None:
    try:
        with open(path, "rb") as fh:
            json.loads(fh.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return f"not valid JSON ({' '.join(str(exc).split())})"
    return None


def safetensors_problem(path: str | os.PathLike) -> str | None:
    size = Path(path).stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            return "shorter than the 8-byte safetensors header length"
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8:
            return f"truncated: header of {n} bytes, {size - 8} left"
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return f"bad safetensors header ({exc})"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    data = size - 8 - n
    if ends and max(ends) != data:
        return f"tensors end at byte {max(ends)} of a {data}-byte data section (truncated or padded)"
    return None


_BY_SUFFIX = {
    ".onnx": ("ONNX", lambda p: protobuf_problem(p, _ONNX_REQUIRED)),
    ".pth": ("torch", torch_problem), ".pt": ("torch", torch_problem), ".bin": ("torch", torch_problem),
    ".tar": ("torch", torch_problem), ".ckpt": ("torch", torch_problem),
    ".task": ("zip", zip_problem), ".zip": ("zip", zip_problem),
    ".json": ("JSON", json_problem),
    ".safetensors": ("safetensors", safetensors_problem),
}


def structure_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a well-formed file of the format its extension names, or ``None``
    (also ``None`` for extensions without a check)."""
    entry = _BY_SUFFIX.get(Path(path).suffix.lower())
    if entry is None:
        return None
    kind, check = entry
    try:
        problem = check(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None if problem is None else f"not a valid {kind} file: {problem}"
