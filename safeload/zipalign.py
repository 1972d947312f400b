"""skops' zip laid out again so that every stored entry's data starts on a 64-byte boundary.

A ``.npy`` entry's data starts 64-byte aligned within the entry (numpy pads its header), so
an aligned entry's arrays are views of the verified buffer at load; a misaligned one is copied
(``_skops_load.npy_array``: 2.3 ms for 10 MB). ``skops.io.dump`` puts entries wherever they
fall. The padding is what Android's zipalign writes: an extra field ``0xD935`` (its length,
the alignment as two bytes, zeros) in the local header only; names, data, CRCs and the central
directory's records are kept byte for byte, with their offsets moved. The result is still a
zip any reader opens the same way, and it is what save scans, hashes and signs.

Only the layout ``zipfile`` writes to a seekable buffer is realigned: entries one after the
other from offset 0, no data descriptors, no ZIP64, no archive comment, the central directory
right after the last entry. Anything else is returned as it was (``None``): alignment is a
speed-up, never a reason to fail a save.
"""

from __future__ import annotations

import struct

ALIGN = 64
_PAD_ID = 0xD935  # zipalign's "alignment" extra field: u16 alignment, then zero padding
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory record, 46 bytes
_END = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes
_STORED = 0


def align_stored_entries(data: memoryview) -> bytes | None:
    """``data`` (a zip) with each stored entry's data 64-byte aligned, or None to keep it."""
    entries = _entries(data)
    if entries is None:
        return None
    pieces: list[bytes | bytearray | memoryview] = []
    moved: dict[int, int] = {}  # old local header offset -> new
    position = 0
    for offset, header_len, data_len, stored in entries:
        header = bytearray(data[offset : offset + header_len])
        pad = 0
        if stored and (position + header_len) % ALIGN:
            pad = 6 + (-(position + header_len + 6)) % ALIGN
            extra_len = _LOCAL.unpack_from(header)[11]
            if extra_len + pad > 0xFFFF:
                return None
            struct.pack_into("<H", header, 28, extra_len + pad)
            header += struct.pack("<HHH", _PAD_ID, pad - 4, ALIGN) + bytes(pad - 6)
        moved[offset] = position
        pieces += (header, data[offset + header_len : offset + header_len + data_len])
        position += header_len + pad + data_len
    central_at, central_len = _central(data)
    central = bytearray(data[central_at : central_at + central_len + _END.size])
    at = 0
    while at < central_len:
        fields = _CENTRAL.unpack_from(central, at)
        struct.pack_into("<L", central, at + 42, moved[fields[18]])
        at += _CENTRAL.size + fields[12] + fields[13] + fields[14]
    struct.pack_into("<L", central, central_len + 16, position)
    pieces.append(central)
    return b"".join(pieces)


def _central(data: memoryview) -> tuple[int, int]:
    end = _END.unpack_from(data, len(data) - _END.size)
    return end[6], end[5]


def _entries(data: memoryview) -> list[tuple[int, int, int, bool]] | None:
    """Each entry as (offset, local header length, data length, stored), or None if unusual."""
    if len(data) < _END.size:
        return None
    end = _END.unpack_from(data, len(data) - _END.size)
    signature, disk, cd_disk, on_disk, count, cd_len, cd_at, comment = end
    if signature != b"PK\x05\x06" or disk or cd_disk or on_disk != count or comment:
        return None
    if cd_at + cd_len != len(data) - _END.size or count == 0xFFFF:
        return None
    offsets: dict[int, tuple[int, bool]] = {}
    at = cd_at
    for _ in range(count):
        if at + _CENTRAL.size > cd_at + cd_len:
            return None
        fields = _CENTRAL.unpack_from(data, at)
        if fields[0] != b"PK\x01\x02" or fields[15] != 0:  # one disk only
            return None
        compressed, local_at = fields[10], fields[18]
        if 0xFFFFFFFF in (compressed, fields[11], local_at) or local_at in offsets:
            return None
        offsets[local_at] = (compressed, fields[6] == _STORED)
        at += _CENTRAL.size + fields[12] + fields[13] + fields[14]
    if at != cd_at + cd_len:
        return None
    entries: list[tuple[int, int, int, bool]] = []
    position = 0
    for local_at in sorted(offsets):
        compressed, stored = offsets[local_at]
        if local_at != position or position + _LOCAL.size > cd_at:
            return None  # a gap, an overlap, or a header past the entries
        fields = _LOCAL.unpack_from(data, local_at)
        if fields[0] != b"PK\x03\x04" or fields[3] & 0x8:  # a data descriptor follows the data
            return None
        header_len = _LOCAL.size + fields[10] + fields[11]
        if fields[8] != compressed or fields[3] & 0x1:  # encrypted: leave it
            return None
        entries.append((local_at, header_len, compressed, stored))
        position = local_at + header_len + compressed
    if position != cd_at:
        return None
    return entries
