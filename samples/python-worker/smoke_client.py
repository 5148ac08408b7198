#!/usr/bin/python3
"""Smoke test for worker.py (or anything serving worker.thrift, e.g. `trellis balancer`):
a stock Apache Thrift Python client that calls echo("hi"), pid(), sleep(1) and
fail("x"), prints what came back and exits 0 when every answer is as expected
(1 when one is not, 2 on a usage error).

    /usr/bin/python3 smoke_client.py --socket /tmp/w1.sock
    /usr/bin/python3 smoke_client.py --host 127.0.0.1 --port 9090 --framing unframed --protocol compact
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker  # noqa: E402  (the same cached `thrift --gen py` output as the worker uses)


def main():
    parser = argparse.ArgumentParser(description="Call a Worker service once per method and check the answers.")
    parser.add_argument("--socket", metavar="PATH", help="Unix socket to connect to")
    parser.add_argument("--host", default="localhost", help="TCP host (when --socket is not given)")
    parser.add_argument("--port", type=int, default=9090, help="TCP port (when --socket is not given)")
    parser.add_argument("--framing", choices=["framed", "unframed"], default="framed")
    parser.add_argument("--protocol", choices=["binary", "compact"], default="binary")
    parser.add_argument("--multiplexed", metavar="NAME", help="call through TMultiplexedProtocol as NAME:method")
    args = parser.parse_args()

    sys.path.insert(0, worker.generated_code_dir())
    from thrift.protocol import TBinaryProtocol, TCompactProtocol, TMultiplexedProtocol
    from thrift.transport import TSocket, TTransport
    from trellis_worker import Worker
    from trellis_worker.ttypes import WorkerError

    if args.socket:
        sock = TSocket.TSocket(unix_socket=args.socket)
        where = args.socket
    else:
        sock = TSocket.TSocket(args.host, args.port)
        where = "%s:%d" % (args.host, args.port)
    sock.setTimeout(10000)
    transport = TTransport.TFramedTransport(sock) if args.framing == "framed" else TTransport.TBufferedTransport(sock)
    if args.protocol == "binary":
        protocol = TBinaryProtocol.TBinaryProtocol(transport)
    else:
        protocol = TCompactProtocol.TCompactProtocol(transport)
    if args.multiplexed:
        protocol = TMultiplexedProtocol.TMultiplexedProtocol(protocol, args.multiplexed)
    client = Worker.Client(protocol)

    failures = []

    def check(name, ok, shown):
        print("%-6s %s%s" % (name + ":", shown, "" if ok else "   <-- unexpected"))
        if not ok:
            failures.append(name)

    try:
        transport.open()
    except TTransport.TTransportException as e:
        sys.stderr.write("cannot connect to %s: %s\n" % (where, e))
        return 1
    try:
        text = client.echo("hi")
        check("echo", text == "hi", repr(text))
        pid = client.pid()
        check("pid", isinstance(pid, int) and pid > 0, pid)
        slept = client.sleep(1)
        check("sleep", slept == "slept 1", repr(slept))
        try:
            client.fail("x")
            check("fail", False, "returned normally (expected WorkerError)")
        except WorkerError as e:
            check("fail", e.message == "x", "WorkerError(message=%r)" % e.message)
    except Exception as e:  # a transport or application error: the worker is not answering properly
        sys.stderr.write("call failed: %s: %s\n" % (type(e).__name__, e))
        return 1
    finally:
        transport.close()

    if failures:
        sys.stderr.write("unexpected: %s\n" % ", ".join(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
