#!/usr/bin/python3
"""A single-threaded Apache Thrift worker for `trellis balancer`.

It serves the `Worker` service of worker.thrift, in one of two ways:

  --socket PATH    listen on a Unix socket (TSimpleServer: one connection at a
                   time; `--server threaded` for TThreadedServer instead)
  --connect ADDR   connect out to ADDR (`unix:/path`, `/path` or `host:port`)
                   and serve Thrift calls on that connection, reconnecting
                   when it ends

It needs only the standard library and Apache Thrift's `thrift` package (Debian's
python3-thrift, hence /usr/bin/python3). The Python code for worker.thrift is
generated on first start with `thrift --gen py` into $TRELLIS_WORKER_GEN, or
~/.cache/trellis-worker/gen-<sha1 of worker.thrift>. The THRIFT variable names the
compiler to use (default: `thrift` on PATH, else /usr/bin/thrift).

SIGTERM (or SIGINT) exits with code 0 and removes the socket file. stdout stays
empty; the worker logs to stderr.
"""

import argparse
import errno
import hashlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IDL = os.path.join(HERE, "worker.thrift")
PACKAGE = "trellis_worker"
MIB = 1024 * 1024
PAGE = 4096

log = logging.getLogger("worker")


def note(message):
    sys.stderr.write("worker pid=%d %s\n" % (os.getpid(), message))
    sys.stderr.flush()


def die(message, code=1):
    note("error: " + message)
    sys.exit(code)


# ---------------------------------------------------------------------------
# Generated code: cached per worker.thrift content, created atomically.
# ---------------------------------------------------------------------------

def _generated(directory):
    return os.path.isfile(os.path.join(directory, PACKAGE, "Worker.py"))


def generated_code_dir():
    """Returns a directory holding the `trellis_worker` package, generating it if missing."""
    explicit = os.environ.get("TRELLIS_WORKER_GEN")
    if explicit:
        target = os.path.abspath(explicit)
    else:
        with open(IDL, "rb") as f:
            digest = hashlib.sha1(f.read()).hexdigest()
        target = os.path.join(os.path.expanduser("~"), ".cache", "trellis-worker", "gen-" + digest)
    if _generated(target):
        return target

    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    # Generate next to the target, then rename: the rename is atomic, so a
    # worker starting at the same time sees either nothing or complete code.
    scratch = tempfile.mkdtemp(prefix=".%s.tmp-" % os.path.basename(target), dir=parent)
    try:
        compiler = os.environ.get("THRIFT") or shutil.which("thrift") or "/usr/bin/thrift"
        try:
            run = subprocess.run([compiler, "--gen", "py", "-out", scratch, IDL],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        except OSError as e:
            die("cannot run the Thrift compiler %s: %s" % (compiler, e))
        if run.returncode != 0 or not _generated(scratch):
            die("`%s --gen py %s` failed:\n%s" % (compiler, IDL, run.stdout.decode(errors="replace")))
        os.chmod(scratch, 0o755)  # mkdtemp makes it 0700
        try:
            os.rename(scratch, target)  # replaces an empty directory, fails on a full one
            scratch = None
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # Another worker won the race: use its copy.
        if not _generated(target):
            die("%s exists but does not hold the generated %s package" % (target, PACKAGE))
        return target
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------
# The handler
# ---------------------------------------------------------------------------

_held = []  # grow() keeps its allocations here for the life of the process


def make_handler(WorkerError):
    class Handler(object):
        def echo(self, text):
            return text

        def pid(self):
            return os.getpid()

        def sleep(self, ms):
            time.sleep(max(ms, 0) / 1000.0)
            return "slept %d" % ms

        def hang(self):
            while True:
                time.sleep(3600)

        def grow(self, mb):
            if mb < 0:
                raise ValueError("grow: mb must be >= 0, got %d" % mb)
            if mb:
                block = bytearray(mb * MIB)  # calloc'd: not resident until written
                block[::PAGE] = b"\x01" * len(range(0, len(block), PAGE))  # touch every page
                _held.append(block)
            return sum(len(b) for b in _held) // MIB

        def fail(self, message):
            raise WorkerError(message=message)

        def poke(self, text):
            pass

    return Handler()


# ---------------------------------------------------------------------------
# Shutdown: SIGTERM/SIGINT raise Terminate in the main thread, wherever it is
# blocked (accept, recv, a handler's sleep). Thrift's servers and generated
# processors catch only Exception, so it unwinds straight out of serve().
# ---------------------------------------------------------------------------

class Terminate(BaseException):
    pass


_terminating = False


def _on_signal(signum, frame):
    global _terminating
    if _terminating:
        return
    _terminating = True
    raise Terminate(signum)


def watch_parent():
    """Exit (as on SIGTERM) once the process that started us is gone: a balancer killed with SIGKILL cannot stop
    its workers, and an orphaned worker would hold its socket forever."""
    import threading
    import time
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        note("parent pid %d is gone" % parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# ---------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------

def factories(args):
    from thrift.protocol import TBinaryProtocol, TCompactProtocol
    from thrift.transport import TTransport
    if args.framing == "framed":
        transport = TTransport.TFramedTransportFactory()
    else:
        transport = TTransport.TBufferedTransportFactory()
    if args.protocol == "binary":
        protocol = TBinaryProtocol.TBinaryProtocolFactory()
    else:
        protocol = TCompactProtocol.TCompactProtocolFactory()
    return transport, protocol


def remove_stale_socket(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        die("%s is a directory" % path)
    if stat.S_ISSOCK(st.st_mode):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
            live = True
        except OSError:
            live = False
        finally:
            probe.close()
        if live:
            die("another process is listening on %s" % path)
    os.unlink(path)


def serve_socket(args, processor):
    from thrift.server import TServer
    from thrift.transport import TSocket

    class ServerSocket(TSocket.TServerSocket):
        """Listens once (so the start line is logged once the socket is ready) and
        remembers the inode it bound, so only our own file is removed at exit."""
        bound = None

        def listen(self):
            if self.handle is None:
                TSocket.TServerSocket.listen(self)
                st = os.stat(self._unix_socket)
                self.bound = (st.st_dev, st.st_ino)

        def remove_file(self):
            try:
                st = os.lstat(self._unix_socket)
                if (st.st_dev, st.st_ino) == self.bound:
                    os.unlink(self._unix_socket)
            except OSError:
                pass

    path = args.socket
    if len(os.fsencode(path)) > 107:  # sun_path is 108 bytes with the NUL
        die("socket path too long for AF_UNIX (%d bytes, at most 107): %s" % (len(os.fsencode(path)), path))
    remove_stale_socket(path)
    transport = ServerSocket(unix_socket=path)
    tfactory, pfactory = factories(args)
    if args.server == "threaded":
        server = TServer.TThreadedServer(processor, transport, tfactory, pfactory, daemon=True)
    else:
        server = TServer.TSimpleServer(processor, transport, tfactory, pfactory)
    try:
        try:
            transport.listen()
        except OSError as e:
            die("cannot listen on %s: %s" % (path, e))
        note("listening on " + path)
        server.serve()
    finally:
        transport.remove_file()


def parse_address(address):
    """`unix:/path`, `/path` (anything with a slash) or `host:port` / `[v6]:port`."""
    if address.startswith("unix:"):
        return {"unix_socket": address[len("unix:"):]}
    if "/" in address:
        return {"unix_socket": address}
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("expected unix:/path, /path or host:port, got %r" % address)
    return {"host": host.strip("[]") or "localhost", "port": int(port)}


def serve_connect(args, processor):
    """Connects out to the balancer and serves calls on that connection until EOF;
    then reconnects, backing off 0.1 s doubling to 2 s (reset after a connection
    that carried at least one call)."""
    from thrift.transport import TSocket, TTransport

    # TSocket.open logs every failed attempt at ERROR; report state changes instead.
    logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)
    target = parse_address(args.connect)
    tfactory, pfactory = factories(args)
    note("connecting to " + args.connect)

    delay = 0.1
    reported_down = False
    while True:
        sock = TSocket.TSocket(**target)
        sock.setTimeout(5000)  # for connect only
        try:
            sock.open()
        except TTransport.TTransportException as e:
            if not reported_down:
                note("cannot connect to %s (%s); retrying" % (args.connect, e))
                reported_down = True
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        sock.setTimeout(None)  # then wait for calls for as long as it takes
        if "port" in target:
            sock.handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reported_down:
            note("connected to " + args.connect)
            reported_down = False

        itrans = tfactory.getTransport(sock)
        otrans = tfactory.getTransport(sock)
        iprot = pfactory.getProtocol(itrans)
        oprot = pfactory.getProtocol(otrans)
        served = 0
        try:
            while True:
                processor.process(iprot, oprot)
                served += 1
        except TTransport.TTransportException:
            pass  # EOF or a broken connection
        except Exception:
            log.exception("dropping the connection to %s", args.connect)
        finally:
            itrans.close()
            otrans.close()
        if served:
            delay = 0.1
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def main():
    parser = argparse.ArgumentParser(description="Single-threaded Thrift worker for `trellis balancer`.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="listen on this Unix socket")
    where.add_argument("--connect", metavar="ADDR",
                       help="connect out to unix:/path, /path or host:port and serve calls on that connection")
    parser.add_argument("--server", choices=["simple", "threaded"], default="simple",
                        help="with --socket: TSimpleServer (default, one connection at a time) or TThreadedServer")
    parser.add_argument("--framing", choices=["framed", "unframed"], default="framed")
    parser.add_argument("--protocol", choices=["binary", "compact"], default="binary")
    parser.add_argument("--multiplexed", metavar="NAME",
                        help="serve through TMultiplexedProcessor under NAME (no default processor)")
    args = parser.parse_args()
    try:
        import thrift  # noqa: F401
    except ImportError:
        die("no `thrift` module for %s: run the worker with /usr/bin/python3 (Debian's python3-thrift)" % sys.executable)
    if args.connect:
        try:
            parse_address(args.connect)
        except ValueError as e:
            parser.error(str(e))

    # Nothing may reach stdout: anything printed by mistake goes to stderr.
    sys.stdout = sys.stderr
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="worker pid=%d: %%(levelname)s %%(message)s" % os.getpid())

    try:
        sys.path.insert(0, generated_code_dir())
        from trellis_worker import Worker
        from trellis_worker.ttypes import WorkerError

        processor = Worker.Processor(make_handler(WorkerError))
        if args.multiplexed:
            from thrift.TMultiplexedProcessor import TMultiplexedProcessor
            multiplexed = TMultiplexedProcessor()
            multiplexed.registerProcessor(args.multiplexed, processor)
            processor = multiplexed

        if args.socket:
            watch_parent()
            serve_socket(args, processor)
        else:
            serve_connect(args, processor)
    except Terminate as e:
        note("exiting on " + signal.Signals(e.args[0]).name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
