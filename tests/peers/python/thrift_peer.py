#!/usr/bin/python3
"""Reference peer for Trellis' conformance tests.

Drives Apache Thrift's own Python runtime (Debian python3-thrift 0.17) and the
code that `thrift --gen py` generates from conformance.thrift, so the C# tests
can compare bytes and calls against the reference implementation.

Run it with /usr/bin/python3 (the interpreter python3-thrift is installed
for). See README.md in this folder for the modes and the record format.
"""

import argparse
import atexit
import io
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "conformance.thrift")

# Exit codes.
EXIT_OK = 0
EXIT_FAILURE = 1     # environment problems (thrift compiler missing, ...)
EXIT_USAGE = 2
EXIT_TRUNCATED = 3   # input ended in the middle of a record / message
EXIT_BAD_INPUT = 4   # serve: a request the runtime could not process


def _pin_hash_seed():
    """Re-exec with PYTHONHASHSEED=0 unless the caller chose a seed.

    str hashing is randomised per process, which would make the iteration
    order of multi-element set<string> values (sample 2) differ from run to
    run. Pinning the seed makes every output of this peer reproducible.
    """
    if "PYTHONHASHSEED" in os.environ:
        return
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    argv = [sys.executable] + sys.argv
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    except OSError:
        pass  # carry on unpinned rather than fail


# ---------------------------------------------------------------------------
# Command line

class UsageError(Exception):
    pass


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(EXIT_USAGE)


MESSAGE_MODES = ("serve", "call", "read-reply")
TCP_MODES = ("tcp-serve", "tcp-call")


def parse_args(argv):
    p = _ArgParser(
        prog="thrift_peer.py",
        description="Apache Thrift python reference peer for conformance tests.")
    p.add_argument("mode", choices=("samples", "echo") + MESSAGE_MODES + TCP_MODES)
    p.add_argument("--gen-dir", help="directory containing the generated "
                   "'conformance' package (default: generate into a temp dir)")
    p.add_argument("--protocol", choices=("binary", "compact"), default="binary")
    p.add_argument("--accelerated", action="store_true",
                   help="use TBinaryProtocolAccelerated / TCompactProtocolAccelerated")
    p.add_argument("--type", dest="type_name",
                   choices=("Everything", "Inner", "Extended"),
                   help="echo: struct type of the records")
    p.add_argument("--framing", choices=("framed", "unframed", "header"))
    p.add_argument("--multiplexed", metavar="SERVICE")
    p.add_argument("--zlib", action="store_true",
                   help="THeader only: zlib transform on what this peer writes")
    p.add_argument("--header", action="append", default=[], metavar="KEY=VALUE",
                   help="THeader only: info header on what this peer writes "
                   "(repeatable)")
    p.add_argument("--method", choices=("echo", "ping", "notify", "nosuch"))
    p.add_argument("--sample", type=int, default=None)
    p.add_argument("--seqid", type=int, default=None)
    p.add_argument("--host", default=None,
                   help="tcp-serve/tcp-call: address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="tcp-serve/tcp-call: TCP port (tcp-serve: 0 = ephemeral)")
    p.add_argument("--uds", default=None, metavar="PATH",
                   help="tcp-call: connect to this Unix socket instead of TCP")
    p.add_argument("--count", type=int, default=None,
                   help="tcp-call: number of sequential calls (default 1)")
    p.add_argument("--i32v", type=int, default=None,
                   help="tcp-call echo: override the sample's i32v field")
    p.add_argument("--str", dest="str_value", default=None,
                   help="tcp-call echo: override the sample's str field")
    args = p.parse_args(argv)

    try:
        _validate(args)
    except UsageError as e:
        p.error(str(e))
    return args


def _validate(args):
    mode = args.mode
    tcp_mode = mode in TCP_MODES
    message_mode = mode in MESSAGE_MODES or tcp_mode

    if mode == "echo" and args.type_name is None:
        raise UsageError("echo needs --type Everything|Inner|Extended")
    if mode != "echo" and args.type_name is not None:
        raise UsageError("--type is only valid for echo")

    if message_mode and args.framing is None:
        raise UsageError("%s needs --framing framed|unframed|header" % mode)
    if not message_mode:
        for name, value in (("--framing", args.framing),
                            ("--multiplexed", args.multiplexed),
                            ("--method", args.method)):
            if value is not None:
                raise UsageError("%s is only valid for the message and tcp modes" % name)
        if args.zlib or args.header:
            raise UsageError("--zlib/--header are only valid for the message and "
                             "tcp modes")

    if (args.zlib or args.header) and args.framing != "header":
        raise UsageError("--zlib and --header need --framing header")

    headers = []
    for item in args.header:
        if "=" not in item:
            raise UsageError("--header expects KEY=VALUE, got %r" % item)
        key, value = item.split("=", 1)
        headers.append((key.encode("utf-8"), value.encode("utf-8")))
    args.headers = headers

    if mode in ("call", "tcp-call"):
        if args.method is None:
            raise UsageError("%s needs --method echo|ping|notify|nosuch" % mode)
    elif mode == "read-reply":
        if args.method not in ("echo", "ping"):
            raise UsageError("read-reply needs --method echo|ping")
    elif args.method is not None:
        raise UsageError("--method is only valid for call/read-reply/tcp-call")

    if args.uds is not None:
        if mode != "tcp-call":
            raise UsageError("--uds is only valid for tcp-call")
        if args.port is not None or args.host is not None:
            raise UsageError("--uds replaces --port/--host")
    elif tcp_mode:
        if args.port is None:
            raise UsageError("%s needs --port P" % mode)
        if not 0 <= args.port <= 65535:
            raise UsageError("--port must be in 0..65535")
        if mode == "tcp-call" and args.port == 0:
            raise UsageError("tcp-call needs a real port (not 0)")
        if args.host is None:
            args.host = "127.0.0.1"
    elif args.port is not None or args.host is not None:
        raise UsageError("--port/--host are only valid for tcp-serve/tcp-call")

    if mode == "tcp-call":
        if args.count is None:
            args.count = 1
        if args.count < 1:
            raise UsageError("--count must be at least 1")
        if ((args.i32v is not None or args.str_value is not None)
                and args.method != "echo"):
            raise UsageError("--i32v/--str are only valid with --method echo")
        if args.i32v is not None and not -2**31 <= args.i32v < 2**31:
            raise UsageError("--i32v must fit in a signed 32-bit integer")
    elif (args.count is not None or args.i32v is not None
          or args.str_value is not None):
        raise UsageError("--count/--i32v/--str are only valid for tcp-call")

    if mode not in ("call", "tcp-call"):
        if args.sample is not None or args.seqid is not None:
            raise UsageError("--sample/--seqid are only valid for call/tcp-call")
    else:
        if args.sample is not None and args.method != "echo":
            raise UsageError("--sample is only valid with --method echo")
        if args.sample is None:
            args.sample = 0
        if not 0 <= args.sample < SAMPLE_COUNT:
            raise UsageError("--sample must be in 0..%d" % (SAMPLE_COUNT - 1))
        if args.seqid is not None and not -2**31 <= args.seqid < 2**31:
            raise UsageError("--seqid must fit in a signed 32-bit integer")
    # read-reply accepts --multiplexed (and --zlib/--header) and ignores them:
    # replies carry the bare method name and this mode writes nothing.


# ---------------------------------------------------------------------------
# Generated code

def load_generated(gen_dir):
    if gen_dir is None:
        gen_dir = tempfile.mkdtemp(prefix="thrift_peer_gen_")
        atexit.register(shutil.rmtree, gen_dir, True)
        try:
            proc = subprocess.run(["thrift", "--gen", "py", "-out", gen_dir, SCHEMA],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            sys.stderr.write("cannot run the thrift compiler: %s\n" % e)
            sys.exit(EXIT_FAILURE)
        if proc.returncode != 0:
            sys.stderr.write("thrift --gen py failed:\n")
            sys.stderr.write(proc.stderr.decode("utf-8", "replace"))
            sys.exit(EXIT_FAILURE)
    elif not os.path.isdir(os.path.join(gen_dir, "conformance")):
        sys.stderr.write("--gen-dir %s has no 'conformance' package\n" % gen_dir)
        sys.exit(EXIT_USAGE)
    sys.path.insert(0, os.path.abspath(gen_dir))
    from conformance import ttypes, Conformance  # noqa: E402
    return ttypes, Conformance


# Filled in by main() once the generated package is importable.
T = None   # conformance.ttypes
C = None   # conformance.Conformance

try:
    from thrift.Thrift import (  # noqa: E402
        TApplicationException, TException, TMessageType, TType)
    from thrift.protocol.TBinaryProtocol import (  # noqa: E402
        TBinaryProtocol, TBinaryProtocolAccelerated,
        TBinaryProtocolAcceleratedFactory, TBinaryProtocolFactory)
    from thrift.protocol.TCompactProtocol import (  # noqa: E402
        TCompactProtocol, TCompactProtocolAccelerated,
        TCompactProtocolAcceleratedFactory, TCompactProtocolFactory)
    from thrift.protocol.THeaderProtocol import (  # noqa: E402
        THeaderProtocol, THeaderProtocolFactory)
    from thrift.protocol.TMultiplexedProtocol import TMultiplexedProtocol  # noqa: E402
    from thrift.server import TServer  # noqa: E402
    from thrift.TMultiplexedProcessor import TMultiplexedProcessor  # noqa: E402
    from thrift.transport import TSocket  # noqa: E402
    from thrift.transport.TTransport import (  # noqa: E402
        CReadableTransport, TBufferedTransport, TBufferedTransportFactory,
        TFramedTransport, TFramedTransportFactory, TMemoryBuffer, TTransportBase,
        TTransportException, TTransportFactoryBase)
    from thrift.transport.THeaderTransport import (  # noqa: E402
        THeaderClientType, THeaderSubprotocolID, THeaderTransformID, THeaderTransport)
    from peer_stdio import (  # noqa: E402
        ALL_CLIENT_TYPES, StdioTransport, binary_hex, header_subprotocol, message_stack,
        plain_protocol, read_exact, record_message_begins, serialize, write_record)
except ImportError as _e:  # pragma: no cover - environment problem
    sys.stderr.write("cannot import the thrift runtime (%s); run this peer with "
                     "/usr/bin/python3, which has Debian's python3-thrift\n" % _e)
    sys.exit(EXIT_FAILURE)

# ---------------------------------------------------------------------------
# Samples

SAMPLE_COUNT = 4


def build_samples():
    E, I, Color = T.Everything, T.Inner, T.Color
    s0 = E(
        b_true=True,
        b_false=False,
        i8v=-128,
        i16v=-32768,
        i32v=2147483647,
        i64v=-9223372036854775808,
        dbl=3.141592653589793,
        str="h\u00e9llo w\u00f6rld \u2713 \U0001F600",
        bin=bytes(range(256)),
        inner=I(id=7, name="seven"),
        ints=[0, 1, -1, 127, 128, -2147483648, 2147483647],
        strs={"only"},
        m={"a": 1, "b": -1, "long": 9223372036854775807},
        inners=[I(id=1, name="one"), I(id=2, name="two")],
        nested=[[1, 2], [], [-3]],
        deep={1: [I(id=1, name="x")], -5: []},
        color=Color.BLUE,
        bools=[True, False, True],
        longs={42},
        dbls=[0.0, -0.0, 1.5, -2.25e300, float("inf"), float("-inf"), 5e-324],
        bins=[b"", b"\x00\xff"],
        small={-1: True, 0: False},
        far=40,
        opt_inner=I(id=300, name="far away"),
    )
    s1 = E()
    s2 = E(
        ints=list(range(-500, 500)),
        strs={"s%d" % i for i in range(20)},
        m={"k%03d" % i: i * 1000003 for i in range(50)},
        bools=[i % 3 == 0 for i in range(30)],
        str="x" * 70000,
        bin=bytes(i % 251 for i in range(100000)),
        longs={i * 2 ** 40 for i in range(20)},
        nested=[[j for j in range(i)] for i in range(17)],
        inners=[I(id=i, name="n%d" % i) for i in range(100)],
    )
    s3 = E(
        b_false=False,
        i32v=-2147483648,
        far=-1,
        opt_inner=I(id=0, name=""),
    )
    samples = [s0, s1, s2, s3]
    assert len(samples) == SAMPLE_COUNT
    return samples


# ---------------------------------------------------------------------------
# Transports and protocols

# ---------------------------------------------------------------------------
# Helpers

def describe(exc):
    """(class name, message) of an exception."""
    name = type(exc).__name__
    if isinstance(exc, TException) and not isinstance(exc, TApplicationException):
        msg = exc.message
        if msg is None:
            msg = ""
        elif not isinstance(msg, str):
            msg = str(msg)
    else:
        msg = str(exc)
    return name, msg


def deserialize(cls, data, args):
    buf = TMemoryBuffer(data)
    obj = cls()
    obj.read(plain_protocol(args, buf))
    consumed = buf._buffer.tell()
    if consumed != len(data):
        raise ValueError("trailing bytes: struct ended after %d of %d bytes"
                         % (consumed, len(data)))
    return obj


def write_error_record(out, exc):
    name, msg = describe(exc)
    write_record(out, 1, ("%s: %s" % (name, msg)).encode("utf-8"))


def truncated():
    sys.stdout.buffer.flush()
    sys.stderr.write("truncated\n")
    sys.stderr.flush()
    sys.exit(EXIT_TRUNCATED)


# ---------------------------------------------------------------------------
# Modes

def mode_samples(args):
    out = sys.stdout.buffer
    for sample in build_samples():
        write_record(out, 0, serialize(sample, args))
    out.flush()
    return EXIT_OK


def mode_echo(args):
    cls = getattr(T, args.type_name)
    infile, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head, complete = read_exact(infile, 4)
        if not head:
            break
        if not complete:
            truncated()
        (length,) = struct.unpack(">I", head)
        if length == 0:
            write_record(out, 1, b"ValueError: record of length 0 has no status byte")
            continue
        body, complete = read_exact(infile, length)
        if not complete:
            truncated()
        status, payload = body[0], body[1:]
        try:
            if status != 0:
                raise ValueError("input record has status %d, expected 0" % status)
            obj = deserialize(cls, payload, args)
            data = serialize(obj, args)
        except Exception as e:  # report every failure as a record
            write_error_record(out, e)
        else:
            write_record(out, 0, data)
    out.flush()
    return EXIT_OK


class Handler(object):
    def __init__(self, htrans, extra_headers):
        self._htrans = htrans
        self._extra_headers = extra_headers

    def _current_htrans(self):
        """The THeaderTransport of the call being handled (None if not THeader)."""
        return self._htrans

    def _reply_headers(self):
        """Reply info headers: request headers, --header ones, peer=python."""
        htrans = self._current_htrans()
        if htrans is None:
            return
        for key, value in list(htrans.get_headers().items()):
            htrans.set_header(key, value)
        for key, value in self._extra_headers:
            htrans.set_header(key, value)
        htrans.set_header(b"peer", b"python")

    def echo(self, value):
        self._reply_headers()
        if value is not None and value.i32v == 42:
            raise T.Oops(code=42, message="forty-two")
        return value

    def ping(self):
        self._reply_headers()

    def notify(self, what):
        sys.stderr.write("notify:%s\n" % (what,))
        sys.stderr.flush()


def mode_serve(args):
    stdio = StdioTransport(sys.stdin.buffer, sys.stdout.buffer)
    prot, htrans = message_stack(args, stdio, ALL_CLIENT_TYPES)
    processor = C.Processor(Handler(htrans, args.headers))
    if args.multiplexed is not None:
        mux = TMultiplexedProcessor()
        mux.registerProcessor(args.multiplexed, processor)
        processor = mux
    while not stdio.at_eof():
        if htrans is not None:
            htrans.clear_headers()
        try:
            processor.process(prot, prot)
        except EOFError:
            truncated()
        except TTransportException as e:
            if e.type == TTransportException.END_OF_FILE:
                truncated()
            return _serve_failure(e)
        except Exception as e:
            return _serve_failure(e)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _serve_failure(exc):
    sys.stdout.buffer.flush()
    name, msg = describe(exc)
    sys.stderr.write("error: %s: %s\n" % (name, msg))
    sys.stderr.flush()
    return EXIT_BAD_INPUT


def mode_call(args):
    sink = TMemoryBuffer()
    prot, htrans = message_stack(args, sink, (THeaderClientType.HEADERS,))
    if htrans is not None:
        for key, value in args.headers:
            htrans.set_header(key, value)
    if args.multiplexed is not None:
        prot = TMultiplexedProtocol(prot, args.multiplexed)
    client = C.Client(prot)
    if args.seqid is not None:
        client._seqid = args.seqid

    if args.method == "echo":
        client.send_echo(build_samples()[args.sample])
    elif args.method == "ping":
        client.send_ping()
    elif args.method == "notify":
        client.send_notify("hello")
    else:  # nosuch: a CALL with an empty args struct, written by hand
        prot.writeMessageBegin("nosuch", TMessageType.CALL, client._seqid)
        prot.writeStructBegin("nosuch_args")
        prot.writeFieldStop()
        prot.writeStructEnd()
        prot.writeMessageEnd()
        prot.trans.flush()

    out = sys.stdout.buffer
    out.write(sink.getvalue())
    out.flush()
    return EXIT_OK


def _read_reply_report(call, prot_begins, htrans):
    """Runs `call` (which makes/reads one call) and returns its JSON report.

    `call` returns a report dict or raises; prot_begins is the list that the
    recording readMessageBegin appends to.
    """
    try:
        report = call()
    except T.Oops as e:
        report = {"kind": "oops", "code": e.code, "message": e.message}
    except TApplicationException as e:
        report = {"kind": "app_exception", "type": e.type, "message": e.message}
    except Exception as e:
        name, msg = describe(e)
        inner = getattr(e, "inner", None)  # TTransportException's cause
        if inner is not None:
            msg = "%s (%s: %s)" % ((msg,) + describe(inner))
        report = {"kind": "error", "class": name, "message": msg}
    if prot_begins:
        name, mtype, seqid = prot_begins[0]
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        report["seqid"] = seqid
        report["name"] = name
        report["mtype"] = mtype
    if htrans is not None:
        report["headers"] = {
            k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
            for k, v in htrans.get_headers().items()}
    return report


def mode_read_reply(args):
    # Writes are discarded: THeaderProtocol.readMessageBegin answers an
    # unknown transform by writing an exception message to its transport.
    stdio = StdioTransport(sys.stdin.buffer, None)
    prot, htrans = message_stack(args, stdio, ALL_CLIENT_TYPES)
    begins = record_message_begins(prot)
    client = C.Client(prot)

    def read_one():
        if args.method == "echo":
            return {"kind": "result", "value": binary_hex(client.recv_echo())}
        client.recv_ping()
        return {"kind": "void"}

    report = _read_reply_report(read_one, begins, htrans)
    if htrans is not None and begins:
        # What THeaderTransport detected / parsed for this reply.
        # client_type: 0 THeader, 1 framed binary, 2 unframed binary,
        # 3 framed compact, 4 unframed compact. header_seqid/flags are
        # only meaningful for client_type 0.
        report["client_type"] = htrans._client_type
        report["header_seqid"] = htrans.sequence_id
        report["header_flags"] = htrans.flags
    _emit(report)
    return EXIT_OK


# ---------------------------------------------------------------------------
# TCP modes (stock TSocket / TServerSocket / TThreadedServer, loopback)

SLEEP_STR = "sleep"      # tcp-serve: echo of a value with this str sleeps ...
SLEEP_SECONDS = 0.5      # ... this long before it answers
CLIENT_TIMEOUT_MS = 10000


class TcpHandler(Handler):
    """The `serve` handler, shared by all connections of tcp-serve.

    TThreadedServer serves every connection on its own thread, so the
    THeaderTransport of the call being handled is kept per thread.
    """

    def __init__(self, extra_headers):
        Handler.__init__(self, None, extra_headers)
        self._local = threading.local()

    def set_current_htrans(self, htrans):
        self._local.htrans = htrans

    def _current_htrans(self):
        return getattr(self._local, "htrans", None)

    def echo(self, value):
        if value is not None and value.str == SLEEP_STR:
            time.sleep(SLEEP_SECONDS)
        return Handler.echo(self, value)


class _ConnectionProcessor(object):
    """Wraps the real processor: before each call it tells the handler which
    THeaderTransport (if any) the current thread serves and drops write
    headers left over from a previous call (like `serve` does)."""

    def __init__(self, inner, handler):
        self._inner = inner
        self._handler = handler

    def process(self, iprot, oprot):
        htrans = iprot.trans if isinstance(iprot, THeaderProtocol) else None
        self._handler.set_current_htrans(htrans)
        if htrans is not None:
            htrans.clear_headers()
        return self._inner.process(iprot, oprot)


class _HeaderProtocolFactory(THeaderProtocolFactory):
    """THeaderProtocolFactory that can also add the zlib transform (--zlib).

    It stays a THeaderProtocolFactory, which is what makes TServer use one
    protocol object for input and output (so replies use the request dialect).
    """

    def __init__(self, allowed_client_types, default_protocol, zlib):
        THeaderProtocolFactory.__init__(self, allowed_client_types, default_protocol)
        self._zlib = zlib

    def getProtocol(self, trans):
        prot = THeaderProtocolFactory.getProtocol(self, trans)
        if self._zlib:
            prot.trans.add_transform(THeaderTransformID.ZLIB)
        return prot


class _AnnouncingServerSocket(TSocket.TServerSocket):
    """TServerSocket that prints `listening <port>` once it listens."""

    def listen(self):
        TSocket.TServerSocket.listen(self)
        port = self.handle.getsockname()[1]
        sys.stdout.write("listening %d\n" % port)
        sys.stdout.flush()


def plain_protocol_factory(args):
    if args.protocol == "binary":
        if args.accelerated:
            return TBinaryProtocolAcceleratedFactory()
        return TBinaryProtocolFactory()  # strictRead=False, strictWrite=True
    if args.accelerated:
        return TCompactProtocolAcceleratedFactory()
    return TCompactProtocolFactory()


def _exit_on_signal(signum, frame):
    raise SystemExit(EXIT_OK)


def _setup_logging():
    # The stock servers/sockets log through `logging`; send it to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def mode_tcp_serve(args):
    _setup_logging()
    handler = TcpHandler(args.headers)
    processor = C.Processor(handler)
    if args.multiplexed is not None:
        mux = TMultiplexedProcessor()
        mux.registerProcessor(args.multiplexed, processor)
        processor = mux
    processor = _ConnectionProcessor(processor, handler)

    if args.framing == "header":
        # THeaderTransport does its own framing (and detects framed/unframed
        # non-THeader clients), so it goes straight onto the socket.
        transport_factory = TTransportFactoryBase()
        protocol_factory = _HeaderProtocolFactory(
            ALL_CLIENT_TYPES, header_subprotocol(args), args.zlib)
    else:
        if args.framing == "framed":
            transport_factory = TFramedTransportFactory()
        else:
            transport_factory = TBufferedTransportFactory()
        protocol_factory = plain_protocol_factory(args)

    server_socket = _AnnouncingServerSocket(host=args.host, port=args.port)
    server = TServer.TThreadedServer(processor, server_socket,
                                     transport_factory, protocol_factory,
                                     daemon=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    try:
        server.serve()  # listen() (prints the port), then accept forever
    except OSError as e:
        sys.stderr.write("error: %s: %s\n" % describe(e))
        sys.stderr.flush()
        return EXIT_FAILURE
    return EXIT_OK


def _tcp_echo_value(args):
    value = build_samples()[args.sample]
    if args.i32v is not None:
        value.i32v = args.i32v
    if args.str_value is not None:
        value.str = args.str_value
    return value


def _call_nosuch(client, prot):
    """A CALL `nosuch` with an empty args struct; reads the reply message."""
    prot.writeMessageBegin("nosuch", TMessageType.CALL, client._seqid)
    prot.writeStructBegin("nosuch_args")
    prot.writeFieldStop()
    prot.writeStructEnd()
    prot.writeMessageEnd()
    prot.trans.flush()
    _name, mtype, _seqid = prot.readMessageBegin()
    if mtype == TMessageType.EXCEPTION:
        x = TApplicationException()
        x.read(prot)
        prot.readMessageEnd()
        raise x
    prot.skip(TType.STRUCT)
    prot.readMessageEnd()
    raise ValueError("nosuch: expected an EXCEPTION reply, got message type %d"
                     % mtype)


def _emit(report):
    out = sys.stdout.buffer
    out.write(json.dumps(report).encode("utf-8") + b"\n")
    out.flush()


def mode_tcp_call(args):
    _setup_logging()
    if args.uds is not None:
        sock = TSocket.TSocket(unix_socket=args.uds)
    else:
        sock = TSocket.TSocket(args.host, args.port)
    sock.setTimeout(CLIENT_TIMEOUT_MS)
    # Unframed: the generated client would otherwise write field by field.
    base = TBufferedTransport(sock) if args.framing == "unframed" else sock
    prot, htrans = message_stack(args, base, (THeaderClientType.HEADERS,))
    if args.multiplexed is not None:
        prot = TMultiplexedProtocol(prot, args.multiplexed)
    begins = record_message_begins(prot)
    client = C.Client(prot)
    if args.seqid is not None:
        client._seqid = args.seqid

    try:
        sock.open()
    except Exception as e:
        name, msg = describe(e)
        _emit({"kind": "error", "class": name, "message": msg})
        return EXIT_FAILURE

    value = _tcp_echo_value(args) if args.method == "echo" else None

    def one_call():
        if args.method == "echo":
            return {"kind": "result", "value": binary_hex(client.echo(value))}
        if args.method == "ping":
            client.ping()
        elif args.method == "notify":
            client.notify("hello")  # oneway: returns once the request is sent
        else:
            _call_nosuch(client, prot)
        return {"kind": "void"}

    try:
        for _ in range(args.count):
            del begins[:]
            if htrans is not None:
                htrans.get_headers().clear()  # no stale reply headers
                for key, val in args.headers:  # written headers clear on flush
                    htrans.set_header(key, val)
            report = _read_reply_report(one_call, begins, htrans)
            _emit(report)
            if report["kind"] == "error":
                break  # the connection is out of step (or gone): stop here
    finally:
        sock.close()
    return EXIT_OK


MODES = {
    "samples": mode_samples,
    "echo": mode_echo,
    "serve": mode_serve,
    "call": mode_call,
    "read-reply": mode_read_reply,
    "tcp-serve": mode_tcp_serve,
    "tcp-call": mode_tcp_call,
}


def main(argv):
    global T, C
    args = parse_args(argv)
    _pin_hash_seed()
    T, C = load_generated(args.gen_dir)
    return MODES[args.mode](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
