#!/usr/bin/python3
"""Reference peer for Trellis' IDL feature tests.

Drives Apache Thrift's own Python runtime (Debian python3-thrift 0.17) and the
code that `thrift -r --gen py` generates from
tests/Trellis.Thrift.Idl.Tests/idl/features.thrift (which includes
shared.thrift), so the C# tests can compare bytes and calls against the
reference implementation.

Run it with /usr/bin/python3 (the interpreter python3-thrift is installed
for). See IDL_PEER.md in this folder for the modes and the record format.
"""

import argparse
import atexit
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_IDL_DIR = os.path.normpath(
    os.path.join(HERE, "..", "..", "Trellis.Thrift.Idl.Tests", "idl"))
MAIN_IDL = "features.thrift"

# Exit codes.
EXIT_OK = 0
EXIT_FAILURE = 1     # environment problems (thrift compiler missing, ...)
EXIT_USAGE = 2
EXIT_TRUNCATED = 3   # input ended in the middle of a record / message
EXIT_BAD_INPUT = 4   # serve: a request the runtime could not process
EXIT_COUNT = 5       # check: not exactly SAMPLE_COUNT records


def _pin_hash_seed():
    """Re-exec with PYTHONHASHSEED=0 unless the caller chose a seed.

    str/bytes hashing is randomised per process, which would make the
    iteration order of multi-element sets of strings or binaries (for example
    Defaults.colors) differ from run to run. Pinning the seed makes every
    output of this peer reproducible.
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
CALL_METHODS = ("get", "put", "touch", "trace", "choose", "count", "ping")
REPLY_METHODS = ("get", "put", "trace", "choose", "count", "ping")
ID_METHODS = ("get", "put", "touch")


def parse_args(argv):
    p = _ArgParser(
        prog="idl_peer.py",
        description="Apache Thrift python reference peer for the IDL feature tests.")
    p.add_argument("mode", choices=("samples", "check", "gen") + MESSAGE_MODES)
    p.add_argument("--gen-dir", help="directory containing the generated "
                   "'features' and 'shared' packages (default: generate into a "
                   "temp dir)")
    p.add_argument("--idl", help="features.thrift, or the folder holding it and "
                   "shared.thrift (default: %s)" % DEFAULT_IDL_DIR)
    p.add_argument("--out", help="gen: directory to generate the packages into")
    p.add_argument("--protocol", choices=("binary", "compact"), default="binary")
    p.add_argument("--accelerated", action="store_true",
                   help="use TBinaryProtocolAccelerated / TCompactProtocolAccelerated")
    p.add_argument("--framing", choices=("framed", "unframed", "header"))
    p.add_argument("--multiplexed", metavar="SERVICE")
    p.add_argument("--zlib", action="store_true",
                   help="THeader only: zlib transform on what this peer writes")
    p.add_argument("--header", action="append", default=[], metavar="KEY=VALUE",
                   help="THeader only: info header on what this peer writes "
                   "(repeatable)")
    p.add_argument("--method", choices=CALL_METHODS)
    p.add_argument("--seqid", type=int, default=None)
    p.add_argument("--id", dest="call_id", default=None,
                   help="call: the id for get/put/touch (default e-1)")
    args = p.parse_args(argv)

    try:
        _validate(args)
    except UsageError as e:
        p.error(str(e))
    return args


def _validate(args):
    mode = args.mode
    message_mode = mode in MESSAGE_MODES

    if mode == "gen":
        if args.out is None:
            raise UsageError("gen needs --out DIR")
        if args.gen_dir is not None:
            raise UsageError("--gen-dir is not valid for gen")
    elif args.out is not None:
        raise UsageError("--out is only valid for gen")
    if args.gen_dir is not None and args.idl is not None:
        raise UsageError("--idl and --gen-dir exclude each other")

    if message_mode and args.framing is None:
        raise UsageError("%s needs --framing framed|unframed|header" % mode)
    if not message_mode:
        for name, value in (("--framing", args.framing),
                            ("--multiplexed", args.multiplexed),
                            ("--method", args.method)):
            if value is not None:
                raise UsageError("%s is only valid for serve/call/read-reply" % name)
        if args.zlib or args.header:
            raise UsageError("--zlib/--header are only valid for serve/call/read-reply")

    if (args.zlib or args.header) and args.framing != "header":
        raise UsageError("--zlib and --header need --framing header")

    headers = []
    for item in args.header:
        if "=" not in item:
            raise UsageError("--header expects KEY=VALUE, got %r" % item)
        key, value = item.split("=", 1)
        headers.append((key.encode("utf-8"), value.encode("utf-8")))
    args.headers = headers

    if mode == "call":
        if args.method is None:
            raise UsageError("call needs --method %s" % "|".join(CALL_METHODS))
    elif mode == "read-reply":
        if args.method not in REPLY_METHODS:
            raise UsageError("read-reply needs --method %s" % "|".join(REPLY_METHODS))
    elif args.method is not None:
        raise UsageError("--method is only valid for call/read-reply")

    if mode != "call":
        if args.seqid is not None or args.call_id is not None:
            raise UsageError("--seqid/--id are only valid for call")
    else:
        if args.call_id is not None and args.method not in ID_METHODS:
            raise UsageError("--id is only valid with --method get|put|touch")
        if args.call_id is None:
            args.call_id = "e-1"
        if args.seqid is not None and not -2**31 <= args.seqid < 2**31:
            raise UsageError("--seqid must fit in a signed 32-bit integer")
    # read-reply accepts --multiplexed (and --zlib/--header) and ignores them:
    # replies carry the bare method name and this mode writes nothing.


# ---------------------------------------------------------------------------
# Generated code


def _idl_paths(idl):
    if idl is None:
        idl = DEFAULT_IDL_DIR
    if os.path.isdir(idl):
        return os.path.abspath(idl), MAIN_IDL
    return os.path.dirname(os.path.abspath(idl)), os.path.basename(idl)


def generate(out_dir, idl, verbose):
    """thrift -r --gen py on the IDL (the file the C# generator compiles too) into out_dir."""
    src_dir, main = _idl_paths(idl)
    if not os.path.isfile(os.path.join(src_dir, main)):
        sys.stderr.write("no IDL at %s\n" % os.path.join(src_dir, main))
        sys.exit(EXIT_USAGE)
    # -r: without it only the 'features' package is generated, and its
    # "import shared.ttypes" fails.
    cmd = ["thrift", "-r", "--gen", "py", "-out", out_dir, os.path.join(src_dir, main)]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        sys.stderr.write("cannot run the thrift compiler: %s\n" % e)
        sys.exit(EXIT_FAILURE)
    if proc.returncode != 0:
        sys.stderr.write("thrift --gen py failed:\n")
        sys.stderr.write(proc.stderr.decode("utf-8", "replace"))
        sys.exit(EXIT_FAILURE)
    if verbose and proc.stderr:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace"))


def load_generated(gen_dir, idl):
    if gen_dir is None:
        gen_dir = tempfile.mkdtemp(prefix="idl_peer_gen_")
        atexit.register(shutil.rmtree, gen_dir, True)
        generate(gen_dir, idl, False)
    else:
        for package in ("features", "shared"):
            if not os.path.isdir(os.path.join(gen_dir, package)):
                sys.stderr.write("--gen-dir %s has no '%s' package (generate "
                                 "with: idl_peer.py gen --out DIR)\n"
                                 % (gen_dir, package))
                sys.exit(EXIT_USAGE)
    sys.path.insert(0, os.path.abspath(gen_dir))
    import features.ttypes  # noqa: E402
    import features.Features  # noqa: E402
    import shared.ttypes  # noqa: E402
    import shared.BaseService  # noqa: E402
    return (features.ttypes, features.Features,
            shared.ttypes, shared.BaseService)


# Filled in by main() once the generated packages are importable.
F = None    # features.ttypes
FS = None   # features.Features
S = None    # shared.ttypes
BS = None   # shared.BaseService

try:
    from thrift.Thrift import TApplicationException, TException, TMessageType  # noqa: E402
    from thrift.protocol.TBinaryProtocol import (  # noqa: E402
        TBinaryProtocol, TBinaryProtocolAccelerated)
    from thrift.protocol.TCompactProtocol import (  # noqa: E402
        TCompactProtocol, TCompactProtocolAccelerated)
    from thrift.protocol.THeaderProtocol import THeaderProtocol  # noqa: E402
    from thrift.protocol.TMultiplexedProtocol import TMultiplexedProtocol  # noqa: E402
    from thrift.TMultiplexedProcessor import TMultiplexedProcessor  # noqa: E402
    from thrift.transport.TTransport import (  # noqa: E402
        CReadableTransport, TFramedTransport, TMemoryBuffer, TTransportBase,
        TTransportException)
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

SAMPLE_COUNT = 11


def build_samples():
    E, P, Status, Choice = F.Everything, S.Point, S.Status, F.Choice
    s0 = E(
        id="e-1",
        nickname="nick",
        note="a note",
        count=7,
        big=2 ** 40,
        flag=False,
        tiny=-128,
        small=32767,
        ratio=-1.25,
        blob=b"\x00\x01\xfe\xff",
        origin=P(x=1, y=-1),
        path=[P(x=0, y=0), P(x=3, y=4)],
        labels={"env": "prod", "team": "core"},
        ids={1, 2, 3},
        matrix=[["a", "b"], [], ["c"]],
        by_status={Status.ACTIVE: [P(x=1, y=1)], Status.DELETED: []},
        status=Status.DELETED,
        created=1700000000000,
        digests={b"\x01\x02"},
        by_digest={b"\xaa": "aa"},
        choice=Choice(words=["x", "y"]),
        flags=[True, False],
        anchor=P(x=5, y=6),
        score=99.5,
    )
    s1 = E(id="min", anchor=P(x=0, y=0))
    s2 = E(
        id="opt",
        big=0,
        created=-1,
        score=0.0,
        flags=[],
        digests=set(),
        by_digest={},
        choice=Choice(number=-9),
        anchor=P(x=-1, y=2),
        small=0,
        blob=b"",
    )
    s3 = Choice(text="t")
    s4 = Choice(number=2 ** 62)
    s5 = Choice(point=P(x=1, y=2))
    s6 = Choice(words=[])
    s7 = F.Defaults()
    s8 = F.NotFound(message="gone")
    s9 = F.Invalid(reason="bad", fields=["a", "b"])
    s10 = E(
        id="\u00fcn\u00efc\u00f8d\u00e9 \u2713",
        anchor=P(x=2147483647, y=-2147483648),
        labels={},
        matrix=[[]],
        ids=set(),
    )
    samples = [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10]
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
        msg = getattr(exc, "message", None)
        if msg is None:
            msg = str(exc)
        elif not isinstance(msg, str):
            msg = str(msg)
    else:
        msg = str(exc)
    return name, msg


def deserialize(cls, data, args):
    buf = TMemoryBuffer(data)
    obj = cls()
    # Exceptions are immutable: their read is a classmethod that returns a
    # new instance. Structs read into obj and return None.
    result = obj.read(plain_protocol(args, buf))
    if result is not None:
        obj = result
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

def mode_gen(args):
    os.makedirs(args.out, exist_ok=True)
    generate(args.out, args.idl, True)
    return EXIT_OK


def mode_samples(args):
    out = sys.stdout.buffer
    for sample in build_samples():
        write_record(out, 0, serialize(sample, args))
    out.flush()
    return EXIT_OK


def mode_check(args):
    expected = build_samples()
    infile, out = sys.stdin.buffer, sys.stdout.buffer
    index = 0
    while True:
        head, complete = read_exact(infile, 4)
        if not head:
            break
        if not complete:
            truncated()
        (length,) = struct.unpack(">I", head)
        if length == 0:
            write_record(out, 1, b"ValueError: record of length 0 has no status byte")
            index += 1
            continue
        body, complete = read_exact(infile, length)
        if not complete:
            truncated()
        status, payload = body[0], body[1:]
        try:
            if index >= SAMPLE_COUNT:
                raise ValueError("record %d is beyond the %d samples"
                                 % (index, SAMPLE_COUNT))
            if status != 0:
                raise ValueError("input record has status %d, expected 0" % status)
            want = expected[index]
            got = deserialize(type(want), payload, args)
            if got == want:
                data = serialize(got, args)
            else:
                data = None
        except Exception as e:  # report every failure as a record
            write_error_record(out, e)
        else:
            if data is None:
                text = "mismatch: expected %r got %r" % (want, got)
                write_record(out, 1, text.encode("utf-8"))
            else:
                write_record(out, 0, data)
        index += 1
    out.flush()
    if index != SAMPLE_COUNT:
        sys.stderr.write("expected %d records, got %d\n" % (SAMPLE_COUNT, index))
        sys.stderr.flush()
        return EXIT_COUNT
    return EXIT_OK


class Handler(object):
    def __init__(self, htrans, extra_headers):
        self._htrans = htrans
        self._extra_headers = extra_headers

    def _reply_headers(self):
        """Reply info headers: request headers, --header ones, peer=python."""
        if self._htrans is None:
            return
        for key, value in list(self._htrans.get_headers().items()):
            self._htrans.set_header(key, value)
        for key, value in self._extra_headers:
            self._htrans.set_header(key, value)
        self._htrans.set_header(b"peer", b"python")

    def ping(self):
        self._reply_headers()
        return "pong"

    def get(self, id, deep):
        self._reply_headers()
        if id == "missing":
            raise F.NotFound(message="no missing")
        if id == "bad":
            raise F.Invalid(reason="bad id", fields=["id"])
        value = build_samples()[0]
        value.id = id
        value.nickname = "deep" if deep else None
        return value

    def put(self, value):
        self._reply_headers()
        if value.id == "":
            raise F.Invalid(reason="empty id")
        sys.stderr.write("put:%s\n" % (value.id,))
        sys.stderr.flush()

    def touch(self, id, at):
        sys.stderr.write("touch:%s:%s\n" % (id, at))
        sys.stderr.flush()

    def trace(self, path, labels):
        self._reply_headers()
        extra = [S.Point(x=len(labels), y=0)] if labels else []
        return list(reversed(path)) + extra

    def choose(self, choice):
        self._reply_headers()
        return choice

    def count(self):
        self._reply_headers()
        return 7


def mode_serve(args):
    stdio = StdioTransport(sys.stdin.buffer, sys.stdout.buffer)
    prot, htrans = message_stack(args, stdio, ALL_CLIENT_TYPES)
    processor = FS.Processor(Handler(htrans, args.headers))
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
    client = FS.Client(prot)
    if args.seqid is not None:
        client._seqid = args.seqid

    P = S.Point
    method = args.method
    if method == "get":
        client.send_get(args.call_id, True)
    elif method == "put":
        value = build_samples()[0]
        value.id = args.call_id
        client.send_put(value)
    elif method == "touch":
        client.send_touch(args.call_id, 1700000000000)
    elif method == "trace":
        client.send_trace([P(x=1, y=2), P(x=3, y=4)], {"k": "v"})
    elif method == "choose":
        client.send_choose(F.Choice(point=P(x=1, y=2)))
    elif method == "count":
        client.send_count()
    else:
        client.send_ping()

    out = sys.stdout.buffer
    out.write(sink.getvalue())
    out.flush()
    return EXIT_OK


def _result_class(method):
    if method == "ping":
        return BS.ping_result
    return getattr(FS, method + "_result")


def mode_read_reply(args):
    # Writes are discarded: THeaderProtocol.readMessageBegin answers an
    # unknown transform by writing an exception message to its transport.
    stdio = StdioTransport(sys.stdin.buffer, None)
    prot, htrans = message_stack(args, stdio, ALL_CLIENT_TYPES)

    begins = record_message_begins(prot)
    client = FS.Client(prot)
    recv = getattr(client, "recv_" + args.method)

    try:
        value = recv()
        if args.method == "put":
            report = {"kind": "void"}
        else:
            result = _result_class(args.method)(success=value)
            report = {"kind": "result", "repr": repr(value),
                      "value_hex": binary_hex(result)}
    except F.NotFound as e:
        report = {"kind": "not_found", "message": e.message, "code": e.code}
    except F.Invalid as e:
        fields = None if e.fields is None else list(e.fields)
        report = {"kind": "invalid", "reason": e.reason, "fields": fields}
    except TApplicationException as e:
        report = {"kind": "app_exception", "type": e.type, "message": e.message}
    except Exception as e:
        name, msg = describe(e)
        report = {"kind": "error", "class": name, "message": msg}

    if begins:
        name, mtype, seqid = begins[0]
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        report["seqid"] = seqid
        report["name"] = name
        report["mtype"] = mtype
    if htrans is not None:
        report["headers"] = {
            k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
            for k, v in htrans.get_headers().items()}
        if begins:
            # client_type: 0 THeader, 1 framed binary, 2 unframed binary,
            # 3 framed compact, 4 unframed compact. header_seqid/flags are
            # only meaningful for client_type 0.
            report["client_type"] = htrans._client_type
            report["header_seqid"] = htrans.sequence_id
            report["header_flags"] = htrans.flags

    out = sys.stdout.buffer
    out.write(json.dumps(report).encode("utf-8") + b"\n")
    out.flush()
    return EXIT_OK


MODES = {
    "samples": mode_samples,
    "check": mode_check,
    "serve": mode_serve,
    "call": mode_call,
    "read-reply": mode_read_reply,
}


def main(argv):
    global F, FS, S, BS
    args = parse_args(argv)
    if args.mode == "gen":
        return mode_gen(args)
    _pin_hash_seed()
    F, FS, S, BS = load_generated(args.gen_dir, args.idl)
    return MODES[args.mode](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
