#!/usr/bin/python3
"""A stock Apache Thrift Python client over TLS (thrift.transport.TSSLSocket).

Calls ``Echo:echo(text)`` (framed, binary, multiplexed name) once on a
Trellis server and prints one JSON line:

    {"kind": "reply", "value": "..."}           the call was answered
    {"kind": "error", "message": "..."}         TLS or the call failed

It checks the server certificate against --ca and, with --name, that the
certificate carries that URI subject alternative name (trellis://product/
service); --cert/--key present a client certificate (mTLS). Only the
standard library and the thrift package are needed: the call is written
with the protocol API, no generated code.

Exit codes: 0 a line was printed (reply or error); 2 usage.
"""

import argparse
import json
import logging
import sys

from thrift.Thrift import TApplicationException, TMessageType, TType
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSSLSocket, TTransport


class _Causes(logging.Handler):
    """TSocket.open logs why each address failed (the TLS error) and raises a
    generic NOT_OPEN: keep the logged causes for the error line."""

    def __init__(self):
        logging.Handler.__init__(self, logging.INFO)
        self.causes = []

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            self.causes.append("%s: %s" % (type(record.exc_info[1]).__name__, record.exc_info[1]))


def main():
    causes = _Causes()
    thrift_logger = logging.getLogger("thrift")
    thrift_logger.addHandler(causes)
    thrift_logger.setLevel(logging.INFO)
    thrift_logger.propagate = False
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="CA bundle (PEM) the server must chain to")
    p.add_argument("--cert", help="client certificate (PEM), for mTLS")
    p.add_argument("--key", help="client key (PEM)")
    p.add_argument("--name", help="URI name the server certificate must carry")
    p.add_argument("--text", default="hello over tls")
    args = p.parse_args()

    def check(cert, hostname):
        if args.name is None:
            return
        uris = [v for (k, v) in cert.get("subjectAltName", ()) if k == "URI"]
        if args.name not in uris:
            raise TTransport.TTransportException(
                message="server certificate names %s, not %s" % (uris, args.name))

    try:
        sock = TSSLSocket.TSSLSocket(args.host, args.port, ca_certs=args.ca,
                                     certfile=args.cert, keyfile=args.key,
                                     validate_callback=check)
        sock.setTimeout(10000)
        trans = TTransport.TFramedTransport(sock)
        trans.open()
        proto = TBinaryProtocol.TBinaryProtocol(trans)
        proto.writeMessageBegin("Echo:echo", TMessageType.CALL, 1)
        proto.writeStructBegin("echo_args")
        proto.writeFieldBegin("text", TType.STRING, 1)
        proto.writeString(args.text)
        proto.writeFieldEnd()
        proto.writeFieldStop()
        proto.writeStructEnd()
        proto.writeMessageEnd()
        trans.flush()

        _, mtype, seqid = proto.readMessageBegin()
        if mtype == TMessageType.EXCEPTION:
            error = TApplicationException()
            error.read(proto)
            proto.readMessageEnd()
            out = {"kind": "error", "message": "application exception: %s" % error.message}
        else:
            value = None
            proto.readStructBegin()
            while True:
                _, ftype, fid = proto.readFieldBegin()
                if ftype == TType.STOP:
                    break
                if fid == 0 and ftype == TType.STRING:
                    value = proto.readString()
                else:
                    proto.skip(ftype)
                proto.readFieldEnd()
            proto.readStructEnd()
            proto.readMessageEnd()
            out = {"kind": "reply", "value": value, "seqid": seqid}
        trans.close()
    except Exception as e:  # TLS refusals surface as several exception types
        inner = getattr(e, "inner", None)
        out = {"kind": "error", "message": "%s: %s%s%s" % (
            type(e).__name__, e, "" if inner is None else " (%s)" % inner,
            "".join(" [%s]" % c for c in causes.causes))}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
