#!/usr/bin/env python3
"""Connections that die without QUIT must leave the maildrop untouched (RFC 1939 §6).

Over POP3S with Python's poplib: (1) kill the TCP connection in the middle of RETR of the
largest message, (2) DELE every message and kill the connection without QUIT. After each, a
fresh session must see exactly the same messages and UIDs. Prints JSON; exits 1 on failure.

usage: poplib_abort.py HOST PORT USER PASSWORD CAFILE
"""
import json
import poplib
import socket
import ssl
import sys
import time


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def login(host, port, user, password, ctx):
    conn = poplib.POP3_SSL(host, port, context=ctx, timeout=20)
    conn.user(user)
    conn.pass_(password)
    return conn


def snapshot(host, port, user, password, ctx):
    # The server notices the killed connection asynchronously; until then the maildrop is
    # still locked and a new login is answered [IN-USE], which is correct. Retry briefly.
    for _ in range(50):
        try:
            conn = login(host, port, user, password, ctx)
            break
        except poplib.error_proto as exc:
            if b"[IN-USE]" not in exc.args[0]:
                raise
            time.sleep(0.1)
    else:
        fail("maildrop stayed locked after the connection was killed")
    count, total = conn.stat()
    _, uidl, _ = conn.uidl()
    conn.quit()
    return count, total, sorted(line.split()[1].decode() for line in uidl)


def kill(conn):
    # Drop the TCP connection without QUIT and without a TLS close_notify.
    # The file from makefile() holds a reference: the descriptor closes only when both do.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.file.close()
    conn.sock.close()


def main():
    if len(sys.argv) != 6:
        fail(__doc__)
    host, port, user, password, cafile = sys.argv[1:]
    port = int(port)
    ctx = ssl.create_default_context(cafile=cafile)
    before = snapshot(host, port, user, password, ctx)

    # (1) killed in the middle of RETR of the largest message.
    conn = login(host, port, user, password, ctx)
    _, listing, _ = conn.list()
    sizes = {int(n): int(s) for n, s in (line.split() for line in listing)}
    largest = max(sizes, key=sizes.get)
    conn._putcmd("RETR %d" % largest)
    first = conn.file.readline()
    if not first.startswith(b"+OK"):
        fail("RETR answer: %r" % first)
    conn.file.read(4096)
    kill(conn)
    after_retr = snapshot(host, port, user, password, ctx)
    if after_retr != before:
        fail("maildrop changed after a connection killed mid-RETR: %r -> %r" % (before, after_retr))

    # (2) DELE everything, then killed before QUIT.
    conn = login(host, port, user, password, ctx)
    for num in sizes:
        conn.dele(num)
    if conn.stat()[0] != 0:
        fail("STAT after deleting everything is not 0")
    kill(conn)
    after_dele = snapshot(host, port, user, password, ctx)
    if after_dele != before:
        fail("maildrop changed after a connection killed after DELE: %r -> %r" % (before, after_dele))
    print(json.dumps({"messages": before[0], "octets": before[1], "largest": sizes[largest]}))


if __name__ == "__main__":
    main()
