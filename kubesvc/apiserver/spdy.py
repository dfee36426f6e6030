"""SPDY/3.1 framing, sans I/O: what ``kubectl port-forward`` speaks inside its stream (directly after an
``Upgrade: SPDY/3.1`` or tunnelled in WebSocket binary messages, subprotocol ``SPDY/3.1+portforward.k8s.io``).

Only the server side of what Kubernetes' clients use (moby/spdystream): SYN_STREAM in, SYN_REPLY, DATA,
RST_STREAM, PING and GOAWAY out. Header blocks are zlib streams with the SPDY/3 dictionary, one stream per
direction for the whole connection. spdystream does no flow control, so WINDOW_UPDATE and SETTINGS are
read and ignored and none are sent. No WebSocket or SPDY library for Python is maintained, hence this
small framer (the WebSocket layer around it is the ``websockets`` library).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6
MAX_FRAME = 1 << 24  # the 24-bit length field
MAX_HEADER_BLOCK = 256 * 1024  # decompressed header bytes per frame (a bomb stops here)

_DICTIONARY = bytes.fromhex(
    "000000076f7074696f6e73000000046865616400000004706f7374000000037075740000000664656c657465000000057472616365000000"
    "066163636570740000000e6163636570742d636861727365740000000f6163636570742d656e636f64696e670000000f6163636570742d6c"
    "616e67756167650000000d6163636570742d72616e6765730000000361676500000005616c6c6f770000000d617574686f72697a6174696f"
    "6e0000000d63616368652d636f6e74726f6c0000000a636f6e6e656374696f6e0000000c636f6e74656e742d6261736500000010636f6e74"
    "656e742d656e636f64696e6700000010636f6e74656e742d6c616e67756167650000000e636f6e74656e742d6c656e67746800000010636f"
    "6e74656e742d6c6f636174696f6e0000000b636f6e74656e742d6d64350000000d636f6e74656e742d72616e67650000000c636f6e74656e"
    "742d74797065000000046461746500000004657461670000000665787065637400000007657870697265730000000466726f6d0000000468"
    "6f73740000000869662d6d617463680000001169662d6d6f6469666965642d73696e63650000000d69662d6e6f6e652d6d61746368000000"
    "0869662d72616e67650000001369662d756e6d6f6469666965642d73696e63650000000d6c6173742d6d6f646966696564000000086c6f63"
    "6174696f6e0000000c6d61782d666f72776172647300000006707261676d610000001270726f78792d61757468656e746963617465000000"
    "1370726f78792d617574686f72697a6174696f6e0000000572616e676500000007726566657265720000000b72657472792d616674657200"
    "00000673657276657200000002746500000007747261696c6572000000117472616e736665722d656e636f64696e67000000077570677261"
    "64650000000a757365722d6167656e74000000047661727900000003766961000000077761726e696e67000000107777772d61757468656e"
    "746963617465000000066d6574686f64000000036765740000000673746174757300000006323030204f4b0000000776657273696f6e0000"
    "0008485454502f312e310000000375726c000000067075626c69630000000a7365742d636f6f6b69650000000a6b6565702d616c69766500"
    "0000066f726967696e3130303130313230313230323230353230363330303330323330333330343330353330363330373430323430353430"
    "36343037343038343039343130343131343132343133343134343135343136343137353032353034353035323033204e6f6e2d417574686f"
    "726974617469766520496e666f726d6174696f6e323034204e6f20436f6e74656e74333031204d6f766564205065726d616e656e746c7934"
    "303020426164205265717565737434303120556e617574686f72697a656434303320466f7262696464656e343034204e6f7420466f756e64"
    "35303020496e7465726e616c20536572766572204572726f72353031204e6f7420496d706c656d656e746564353033205365727669636520"
    "556e617661696c61626c654a616e20466562204d617220417072204d6179204a756e204a756c204175672053657074204f6374204e6f7620"
    "4465632030303a30303a3030204d6f6e2c205475652c205765642c205468752c204672692c205361742c2053756e2c20474d546368756e6b"
    "65642c746578742f68746d6c2c696d6167652f706e672c696d6167652f6a70672c696d6167652f6769662c6170706c69636174696f6e2f78"
    "6d6c2c6170706c69636174696f6e2f7868746d6c2b786d6c2c746578742f706c61696e2c746578742f6a6176617363726970742c7075626c"
    "6963707269766174656d61782d6167653d677a69702c6465666c6174652c73646368636861727365743d7574662d38636861727365743d69"
    "736f2d383835392d312c7574662d2c2a2c656e713d302e"
)


class ProtocolError(Exception):
    pass


@dataclass
class Frame:
    kind: str  # "data" or "control"
    type: int = 0  # control frame type
    stream_id: int = 0
    flags: int = 0
    data: bytes = b""
    headers: dict[str, list[str]] = field(default_factory=dict)
    ping_id: int = 0
    status: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class Connection:
    """Feed bytes in with ``receive``, get frames back; build outgoing frames as bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=_DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         zdict=_DICTIONARY)

    def receive(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, payload = bytes(self._buf[:8]), bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            f = self._parse(head, payload)
            if f is not None:
                frames.append(f)
        return frames

    def _parse(self, head: bytes, payload: bytes) -> Frame | None:
        word, flags = struct.unpack(">I", head[:4])[0], head[4]
        if not word & 0x80000000:
            return Frame("data", stream_id=word & 0x7FFFFFFF, flags=flags, data=payload)
        version, ftype = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != 3:
            raise ProtocolError(f"unsupported SPDY version {version}")
        if ftype == SYN_STREAM:
            if len(payload) < 10:
                raise ProtocolError("short SYN_STREAM")
            sid = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            return Frame("control", ftype, sid, flags, headers=self._headers(payload[10:]))
        if ftype in (SYN_REPLY, HEADERS):
            sid = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            return Frame("control", ftype, sid, flags, headers=self._headers(payload[4:]))
        if ftype == RST_STREAM and len(payload) >= 8:
            sid, st = struct.unpack(">II", payload[:8])
            return Frame("control", ftype, sid & 0x7FFFFFFF, flags, status=st)
        if ftype == PING and len(payload) >= 4:
            return Frame("control", ftype, flags=flags, ping_id=struct.unpack(">I", payload[:4])[0])
        if ftype == GOAWAY:
            return Frame("control", ftype, flags=flags)
        return None  # SETTINGS, WINDOW_UPDATE, unknown: ignored

    def _headers(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise ProtocolError(f"bad SPDY header block: {e}") from None
        if self._inflate.unconsumed_tail:
            raise ProtocolError("SPDY header block too large")
        out: dict[str, list[str]] = {}
        try:
            (n,), pos = struct.unpack(">I", raw[:4]), 4
            for _ in range(n):
                (ln,) = struct.unpack(">I", raw[pos : pos + 4])
                name = raw[pos + 4 : pos + 4 + ln].decode("latin-1").lower()
                pos += 4 + ln
                (lv,) = struct.unpack(">I", raw[pos : pos + 4])
                value = raw[pos + 4 : pos + 4 + lv].decode("latin-1")
                pos += 4 + lv
                out.setdefault(name, []).extend(value.split("\0"))
        except struct.error:
            raise ProtocolError("truncated SPDY header block") from None
        return out

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            kb, vb = k.lower().encode("latin-1"), v.encode("latin-1")
            raw += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(ftype: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | 3, ftype, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + self._block(headers or {}))

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        """A client's SYN_STREAM (for tests and tools of our own)."""
        payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._block(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, payload)

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        out = []
        for i in range(0, max(len(data), 1), MAX_FRAME - 1):
            part = data[i : i + MAX_FRAME - 1]
            last = i + MAX_FRAME - 1 >= len(data)
            out.append(struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin and last else 0) << 24) | len(part)) + part)
        return b"".join(out)

    def rst(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream, status))
