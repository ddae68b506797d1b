"""HTTP/2 wire constants (RFC 9113) and the builders for the control frames the client sends.

Constants are plain ints, not enums: they are compared once or more per frame on the hot path.
"""

from collections.abc import Mapping
from struct import Struct
from typing import Final

CONNECTION_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9

# Frame flags.
FLAG_END_STREAM: Final = 0x1
FLAG_ACK: Final = 0x1
FLAG_END_HEADERS: Final = 0x4
FLAG_PADDED: Final = 0x8
FLAG_PRIORITY: Final = 0x20

# SETTINGS parameters (RFC 9113 §6.5.2).
SETTINGS_HEADER_TABLE_SIZE: Final = 0x1
SETTINGS_ENABLE_PUSH: Final = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS: Final = 0x3
SETTINGS_INITIAL_WINDOW_SIZE: Final = 0x4
SETTINGS_MAX_FRAME_SIZE: Final = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE: Final = 0x6

# Error codes (RFC 9113 §7).
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
FLOW_CONTROL_ERROR: Final = 0x3
SETTINGS_TIMEOUT: Final = 0x4
STREAM_CLOSED: Final = 0x5
FRAME_SIZE_ERROR: Final = 0x6
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
COMPRESSION_ERROR: Final = 0x9
CONNECT_ERROR: Final = 0xA
ENHANCE_YOUR_CALM: Final = 0xB
INADEQUATE_SECURITY: Final = 0xC
HTTP_1_1_REQUIRED: Final = 0xD

ERROR_NAMES: Final = {
    NO_ERROR: "NO_ERROR",
    PROTOCOL_ERROR: "PROTOCOL_ERROR",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    FLOW_CONTROL_ERROR: "FLOW_CONTROL_ERROR",
    SETTINGS_TIMEOUT: "SETTINGS_TIMEOUT",
    STREAM_CLOSED: "STREAM_CLOSED",
    FRAME_SIZE_ERROR: "FRAME_SIZE_ERROR",
    REFUSED_STREAM: "REFUSED_STREAM",
    CANCEL: "CANCEL",
    COMPRESSION_ERROR: "COMPRESSION_ERROR",
    CONNECT_ERROR: "CONNECT_ERROR",
    ENHANCE_YOUR_CALM: "ENHANCE_YOUR_CALM",
    INADEQUATE_SECURITY: "INADEQUATE_SECURITY",
    HTTP_1_1_REQUIRED: "HTTP_1_1_REQUIRED",
}

DEFAULT_WINDOW_SIZE: Final = 65_535
DEFAULT_MAX_FRAME_SIZE: Final = 16_384
MAX_MAX_FRAME_SIZE: Final = 16_777_215
MAX_WINDOW_SIZE: Final = 2**31 - 1
MAX_STREAM_ID: Final = 2**31 - 1

# The 9-byte frame header packed as (length << 8 | type, flags, stream id): one struct call per frame.
FRAME_HEADER: Final = Struct(">LBL")
FRAME_HEADER_SIZE: Final = 9
_U32: Final = Struct(">L")
_SETTING: Final = Struct(">HL")
_GOAWAY_BODY: Final = Struct(">LL")


def error_name(code: int) -> str:
    """The RFC name of an HTTP/2 error code, or its hex value for codes the RFC does not define."""
    return ERROR_NAMES.get(code, f"0x{code:x}")


def frame_header(length: int, frame_type: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte header of one frame."""
    return FRAME_HEADER.pack((length << 8) | frame_type, flags, stream_id)


def settings_frame(settings: Mapping[int, int]) -> bytes:
    """A SETTINGS frame carrying the given parameters."""
    payload = b"".join(_SETTING.pack(key, value) for key, value in settings.items())
    return frame_header(len(payload), SETTINGS, 0, 0) + payload


SETTINGS_ACK_FRAME: Final = frame_header(0, SETTINGS, FLAG_ACK, 0)


def window_update_frame(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE granting `increment` more bytes on a stream (0 = the connection)."""
    return frame_header(4, WINDOW_UPDATE, 0, stream_id) + _U32.pack(increment)


def rst_stream_frame(stream_id: int, error_code: int) -> bytes:
    """A RST_STREAM closing one stream with an error code."""
    return frame_header(4, RST_STREAM, 0, stream_id) + _U32.pack(error_code)


def ping_frame(opaque: bytes, *, ack: bool = False) -> bytes:
    """A PING (or its ACK) carrying 8 opaque bytes."""
    return frame_header(8, PING, FLAG_ACK if ack else 0, 0) + opaque


def goaway_frame(last_stream_id: int, error_code: int, debug: bytes = b"") -> bytes:
    """A GOAWAY naming the last peer-initiated stream processed and why the connection ends."""
    return frame_header(8 + len(debug), GOAWAY, 0, 0) + _GOAWAY_BODY.pack(last_stream_id, error_code) + debug


def unpack_u32(data: bytes, offset: int) -> int:
    """The big-endian 32-bit integer at offset."""
    value: int = _U32.unpack_from(data, offset)[0]
    return value


def unpack_setting(data: bytes, offset: int) -> tuple[int, int]:
    """The (identifier, value) SETTINGS entry at offset."""
    key, value = _SETTING.unpack_from(data, offset)
    return key, value
