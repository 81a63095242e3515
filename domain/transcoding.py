"""The stored events' JSON, written and read with orjson in the library's own format.

The library's JSONTranscoder spells a UUID, datetime or Decimal as {"_type_": name, "_data_":
text} through the json module's hooks; encoding the events was the largest single item of a
profiled ingest. This transcoder writes and reads the same documents (either one reads what
the other wrote) for the shape every event of this application has: a flat object whose
values are plain JSON scalars, registered types, or objects of scalars and objects of
scalars (the fact and its payload). Anything else (lists, deeper nesting, floats, integers
past 64 bits) goes through the library's code unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

_SCALARS = frozenset({str, int, bool, type(None)})
_TAG, _DATA = "_type_", "_data_"


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        if type(obj) is not dict:
            return super().encode(obj)
        tagged: dict[str, Any] = {}
        for key, value in obj.items():
            kind = type(value)
            if kind is dict:
                if not _scalars_within(value, 2):
                    return super().encode(obj)
            elif kind not in _SCALARS:
                transcoding = self.types.get(kind)
                if transcoding is None:
                    return super().encode(obj)  # raises as the library does, or copes
                data = transcoding.encode(value)
                if type(data) not in _SCALARS:
                    return super().encode(obj)
                value = {_TAG: transcoding.name, _DATA: data}
            tagged[key] = value
        try:
            return orjson.dumps(tagged)
        except orjson.JSONEncodeError:  # an int past 64 bits, a non-str key
            return super().encode(obj)

    def encode_trusted(self, obj: dict[str, Any]) -> bytes:
        """encode() of a flat state whose objects are known to hold JSON scalars only, down
        to two levels (a validated fact's canonical dict): the same bytes, without the walk
        over them that encode() makes to find out."""
        tagged: dict[str, Any] = {}
        for key, value in obj.items():
            kind = type(value)
            if kind is not dict and kind not in _SCALARS:
                transcoding = self.types[kind]
                value = {_TAG: transcoding.name, _DATA: transcoding.encode(value)}
            tagged[key] = value
        return orjson.dumps(tagged)

    def decode(self, data: bytes) -> Any:
        try:
            decoded = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        if type(decoded) is not dict:
            return super().decode(data)
        for key, value in decoded.items():
            if type(value) is not dict:
                if type(value) not in _SCALARS:
                    return super().decode(data)  # a list or a float: the library's way
                continue
            if len(value) == 2 and _TAG in value:
                decoded[key] = self._decode_obj(value)
            elif not _untagged_within(value, 2):
                return super().decode(data)
        return decoded


def _scalars_within(obj: dict[str, Any], depth: int) -> bool:
    """Does `obj` hold only JSON scalars, and objects of them down to `depth` levels?"""
    for value in obj.values():
        kind = type(value)
        if kind is dict:
            if depth <= 1 or not _scalars_within(value, depth - 1):
                return False
        elif kind not in _SCALARS:
            return False
    return True


def _untagged_within(obj: dict[str, Any], depth: int) -> bool:
    """As _scalars_within, and no object in it looks like a tagged value (which the json
    module's object hook would have converted)."""
    for value in obj.values():
        kind = type(value)
        if kind is dict:
            if depth <= 1 or (len(value) == 2 and _TAG in value):
                return False
            if not _untagged_within(value, depth - 1):
                return False
        elif kind not in _SCALARS:
            return False
    return True
