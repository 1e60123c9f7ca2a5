#!/usr/bin/env python3
"""Black-box POP3 client check with Python's standard poplib.

Drives a running cas-server over POP3S (implicit TLS) or POP3 + STLS and checks every answer
against what RFC 1939 requires, independently of the Rust code. Exits 0 on success and prints
one JSON object describing what it saw; exits 1 with a message on the first failure.

usage: poplib_client.py MODE HOST PORT USER PASSWORD CAFILE
  MODE: pop3s | stls
"""
import json
import poplib
import ssl
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def connect(mode, host, port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    if mode == "pop3s":
        return poplib.POP3_SSL(host, port, context=ctx, timeout=20)
    conn = poplib.POP3(host, port, timeout=20)
    caps = conn.capa()
    if "STLS" not in caps:
        fail("STLS not advertised before TLS: %r" % caps)
    if "USER" in caps:
        fail("USER advertised before TLS although clear-text login is refused: %r" % caps)
    # Clear-text login before TLS must be refused with [AUTH].
    try:
        conn.user(b"probe".decode())
        conn.pass_("probe")
        fail("clear-text login accepted before TLS")
    except poplib.error_proto as exc:
        if b"[AUTH]" not in exc.args[0]:
            fail("clear-text refusal lacks [AUTH]: %r" % exc.args[0])
    conn.stls(context=ctx)
    caps = conn.capa()
    if "STLS" in caps:
        fail("STLS still advertised after TLS: %r" % caps)
    if "USER" not in caps:
        fail("USER not advertised after TLS: %r" % caps)
    return conn


def main():
    if len(sys.argv) != 7:
        fail(__doc__)
    mode, host, port, user, password, cafile = sys.argv[1:]
    port = int(port)
    conn = connect(mode, host, port, cafile)
    conn.user(user)
    welcome = conn.pass_(password)
    if not welcome.startswith(b"+OK"):
        fail("PASS answer: %r" % welcome)

    count, total = conn.stat()
    if count < 2:
        fail("expected at least two demo messages, STAT says %d" % count)
    _, listing, _ = conn.list()
    sizes = {}
    for line in listing:
        num, size = line.split()
        sizes[int(num)] = int(size)
    if sum(sizes.values()) != total or len(sizes) != count:
        fail("LIST %r disagrees with STAT %d %d" % (sizes, count, total))
    _, uidl, _ = conn.uidl()
    uids = {}
    for line in uidl:
        num, uid = line.split()
        uids[int(num)] = uid.decode()
    if len(set(uids.values())) != count:
        fail("UIDs are not unique: %r" % uids)
    single = conn.uidl(1)
    if single.split()[2].decode() != uids[1]:
        fail("UIDL 1 %r disagrees with UIDL listing" % single)

    # RETR of every message: the un-stuffed size with CRLF line ends must equal LIST's size.
    for num in sorted(sizes):
        _, lines, octets = conn.retr(num)
        body = b"\r\n".join(lines) + b"\r\n"
        if len(body) != sizes[num]:
            fail("message %d: RETR gave %d octets, LIST said %d" % (num, len(body), sizes[num]))
    # TOP n 0 is the header plus the blank line.
    _, top_lines, _ = conn.top(1, 0)
    if top_lines[-1] != b"" or any(line == b"" for line in top_lines[:-1]):
        fail("TOP 1 0 is not exactly the header and the blank line: %r" % top_lines[-3:])

    victim = uids[1]
    conn.dele(1)
    try:
        conn.retr(1)
        fail("RETR of a deleted message succeeded")
    except poplib.error_proto:
        pass
    new_count, _ = conn.stat()
    if new_count != count - 1:
        fail("STAT after DELE: %d, expected %d" % (new_count, count - 1))
    conn.quit()

    # The deletion persisted, and the other UIDs are stable.
    conn = connect(mode, host, port, cafile)
    conn.user(user)
    conn.pass_(password)
    after_count, _ = conn.stat()
    _, uidl, _ = conn.uidl()
    after_uids = [line.split()[1].decode() for line in uidl]
    conn.quit()
    if after_count != count - 1:
        fail("deletion did not persist: %d messages, expected %d" % (after_count, count - 1))
    if victim in after_uids:
        fail("deleted UID %s still listed" % victim)
    if sorted(after_uids) != sorted(u for n, u in uids.items() if n != 1):
        fail("UIDs changed across sessions: %r vs %r" % (after_uids, uids))
    print(json.dumps({"mode": mode, "messages": count, "deleted": victim, "remaining": after_count}))


if __name__ == "__main__":
    main()
