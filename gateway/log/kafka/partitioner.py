"""Kafka's default partitioning of keyed records, computed as Kafka's own clients do.

`partition_for(key, partitions)` is murmur2(key) & 0x7fffffff mod the partition count,
the rule of the Java client and of aiokafka's `DefaultPartitioner`, so a key lands on the
same partition whoever writes it and whoever looks for it (`gateway trace` finds an
entity's records on its key's partition). `murmur2` reads the key four bytes at a time
with `struct` instead of byte by byte: it runs for every record ingest appends.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of `data` (as a signed value would be masked: unsigned)."""
    length = len(data)
    h = _SEED ^ length
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data) if words else ():
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = length - tail
        if tail >= 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a record keyed `key` goes to among `partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class DefaultPartitioner:
    """aiokafka's partitioner interface with the faster murmur2: keyed records by hash,
    others at random among the available partitions."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[partition_for(key, len(all_partitions))]
