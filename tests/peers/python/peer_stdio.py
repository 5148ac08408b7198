"""Stdio records and Thrift protocol stacks shared by thrift_peer.py and idl_peer.py.

Imported by the peers after they have checked that Debian's python3-thrift is importable.
"""

import io
import struct

from thrift.protocol.TBinaryProtocol import TBinaryProtocol, TBinaryProtocolAccelerated
from thrift.protocol.TCompactProtocol import TCompactProtocol, TCompactProtocolAccelerated
from thrift.protocol.THeaderProtocol import THeaderProtocol
from thrift.transport.TTransport import (
    CReadableTransport, TFramedTransport, TMemoryBuffer, TTransportBase, TTransportException)
from thrift.transport.THeaderTransport import (
    THeaderClientType, THeaderSubprotocolID, THeaderTransformID, THeaderTransport)

ALL_CLIENT_TYPES = (
    THeaderClientType.HEADERS,
    THeaderClientType.FRAMED_BINARY,
    THeaderClientType.UNFRAMED_BINARY,
    THeaderClientType.FRAMED_COMPACT,
    THeaderClientType.UNFRAMED_COMPACT,
)


class StdioTransport(TTransportBase, CReadableTransport):
    """Duplex transport: reads stdin, writes stdout (or a sink).

    Reads behave like TSocket: running out of input raises
    TTransportException(END_OF_FILE) instead of returning b"" (THeaderTransport
    in unframed mode would otherwise spin forever in cstringio_refill). It also
    implements CReadableTransport so the accelerated protocols can decode
    straight from it, and can tell whether the input is exhausted at a message
    boundary.
    """

    CHUNK = 65536

    def __init__(self, infile, outfile):
        self._in = infile
        self._out = outfile
        self._rbuf = io.BytesIO(b"")
        self._wbuf = io.BytesIO()

    def isOpen(self):
        return True

    def _fill(self, want):
        data = self._in.read1(max(want, self.CHUNK))
        if not data:
            raise TTransportException(TTransportException.END_OF_FILE,
                                      "end of input")
        return data

    def read(self, sz):
        if sz <= 0:
            return b""
        ret = self._rbuf.read(sz)
        if ret:
            return ret
        self._rbuf = io.BytesIO(self._fill(sz))
        return self._rbuf.read(sz)

    def at_eof(self):
        """True when no input byte is left (blocks until one arrives or EOF)."""
        probe = self._rbuf.read(1)
        if probe:
            self._rbuf.seek(-1, io.SEEK_CUR)
            return False
        return self._in.peek(1) == b""

    def write(self, buf):
        self._wbuf.write(buf)

    def flush(self):
        data = self._wbuf.getvalue()
        self._wbuf = io.BytesIO()
        if self._out is not None:
            self._out.write(data)
            self._out.flush()

    @property
    def cstringio_buf(self):
        return self._rbuf

    def cstringio_refill(self, partialread, reqlen):
        data = bytearray(partialread)
        while len(data) < reqlen:
            data += self._fill(reqlen - len(data))
        self._rbuf = io.BytesIO(bytes(data))
        return self._rbuf


def plain_protocol(args, trans):
    """A binary/compact protocol per --protocol/--accelerated (no THeader)."""
    if args.protocol == "binary":
        cls = TBinaryProtocolAccelerated if args.accelerated else TBinaryProtocol
        return cls(trans)  # strictWrite=True, strictRead=False (the defaults)
    cls = TCompactProtocolAccelerated if args.accelerated else TCompactProtocol
    return cls(trans)


def header_subprotocol(args):
    if args.protocol == "binary":
        return THeaderSubprotocolID.BINARY
    return THeaderSubprotocolID.COMPACT


def message_stack(args, base, allowed_client_types):
    """Wrap `base` per --framing; returns (protocol, header_transport|None)."""
    if args.framing == "unframed":
        return plain_protocol(args, base), None
    if args.framing == "framed":
        return plain_protocol(args, TFramedTransport(base)), None
    htrans = THeaderTransport(base, allowed_client_types, header_subprotocol(args))
    if args.zlib:
        htrans.add_transform(THeaderTransformID.ZLIB)
    prot = THeaderProtocol(htrans, allowed_client_types, header_subprotocol(args))
    return prot, htrans


def serialize(obj, args):
    buf = TMemoryBuffer()
    obj.write(plain_protocol(args, buf))
    return buf.getvalue()


def binary_hex(obj):
    """hex of obj serialized with the pure, strict TBinaryProtocol."""
    buf = TMemoryBuffer()
    obj.write(TBinaryProtocol(buf))
    return buf.getvalue().hex()


def write_record(out, status, payload):
    out.write(struct.pack(">I", len(payload) + 1))
    out.write(bytes((status,)))
    out.write(payload)


def read_exact(infile, n):
    chunks = []
    while n > 0:
        chunk = infile.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks), n == 0


def record_message_begins(prot):
    """Makes prot.readMessageBegin record what it read; returns the list."""
    begins = []
    real_read_message_begin = prot.readMessageBegin

    def recording_read_message_begin():
        begin = real_read_message_begin()
        begins.append(begin)
        return begin

    prot.readMessageBegin = recording_read_message_begin
    return begins
