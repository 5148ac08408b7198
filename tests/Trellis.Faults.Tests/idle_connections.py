"""Opens N idle TCP connections to HOST:PORT, prints "ready N", holds them until stdin closes."""
import socket
import sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(count):
    s = socket.create_connection((host, port), timeout=10)
    held.append(s)
print("ready", len(held), flush=True)
sys.stdin.read()
for s in held:
    s.close()
