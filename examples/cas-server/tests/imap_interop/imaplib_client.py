#!/usr/bin/env python3
"""Black-box IMAP client check with Python's standard imaplib.

Drives a running IMAP server over IMAPS (implicit TLS) or IMAP + STARTTLS through a whole
session and checks each answer against RFC 3501 / RFC 9051, independently of the Rust code:
LOGIN, LIST, SELECT, FETCH BODYSTRUCTURE and BODY[], APPEND with a (synchronizing) literal,
STORE, COPY, MOVE, EXPUNGE, and IDLE with a message delivered meanwhile by another
connection and, when MAILDIR is given, by another program dropping a file into MAILDIR/new/
(each must be announced within 2 s). Prints one JSON object describing what it saw and exits
0; exits 1 with a message on the first failure.

usage: imaplib_client.py MODE HOST PORT USER PASSWORD CAFILE [MAILDIR]
  MODE: imaps | starttls
"""
import imaplib
import json
import os
import re
import socket
import ssl
import sys
import time
import uuid

IDLE_DEADLINE = 2.0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(typ, data, what):
    if typ != "OK":
        fail("%s: %s %r" % (what, typ, data))
    return data


def connect(mode, host, port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    if mode == "imaps":
        conn = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=20)
        if "STARTTLS" in conn.capabilities:
            fail("STARTTLS advertised on implicit TLS: %r" % (conn.capabilities,))
        return conn
    conn = imaplib.IMAP4(host, port, timeout=20)
    caps = conn.capabilities
    if "STARTTLS" not in caps:
        fail("STARTTLS not advertised before TLS: %r" % (caps,))
    if "LOGINDISABLED" not in caps:
        fail("LOGINDISABLED not advertised before TLS: %r" % (caps,))
    # A clear-text LOGIN before TLS must be refused.
    try:
        conn.login("probe", "probe")
        fail("clear-text LOGIN accepted before TLS")
    except imaplib.IMAP4.error:
        pass
    check(*conn.starttls(ssl_context=ctx), what="STARTTLS")
    caps = conn.capabilities
    if "STARTTLS" in caps or "LOGINDISABLED" in caps:
        fail("STARTTLS/LOGINDISABLED still advertised after TLS: %r" % (caps,))
    return conn


def login(mode, host, port, user, password, cafile):
    conn = connect(mode, host, port, cafile)
    check(*conn.login(user, password), what="LOGIN")
    return conn


def exists_count(data):
    return int(data[0])


def message(subject):
    return (
        "From: Interop <interop@example.org>\r\n"
        "To: Alice <alice@example.org>\r\n"
        "Subject: %s\r\n"
        "Date: Mon, 23 Nov 2026 15:00:00 +0000\r\n"
        "Message-ID: <%s@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Body line one.\r\n"
        ".leading dot and a literal-looking {5}\r\n" % (subject, uuid.uuid4().hex)
    ).encode()


def uid_of(conn, subject):
    data = check(*conn.uid("SEARCH", None, "HEADER", "Subject", '"%s"' % subject), "UID SEARCH")
    uids = data[0].split()
    if len(uids) != 1:
        fail("UID SEARCH for %s found %r" % (subject, uids))
    return uids[0].decode()


def flags_of(conn, uid):
    data = check(*conn.uid("FETCH", uid, "(FLAGS)"), "UID FETCH FLAGS")
    text = b" ".join(d if isinstance(d, bytes) else d[0] for d in data if d)
    m = re.search(rb"FLAGS \(([^)]*)\)", text)
    if not m:
        fail("no FLAGS in %r" % data)
    return m.group(1).decode().split()


def idle_until_exists(conn, deliver, what):
    """Sends IDLE, calls deliver(), and waits for an untagged EXISTS; returns the delay after
    deliver() returned."""
    tag = conn._new_tag().decode()
    conn.send(("%s IDLE\r\n" % tag).encode())
    line = conn.readline()
    if not line.startswith(b"+"):
        fail("IDLE answered %r" % line)
    deliver()
    # The clock starts once the message is in (a second login can itself take a while);
    # an EXISTS that came meanwhile is already waiting in the socket buffer.
    start = time.monotonic()
    conn.sock.settimeout(IDLE_DEADLINE + 1.0)
    seen = None
    try:
        while seen is None:
            line = conn.readline()
            if not line:
                fail("connection closed during IDLE (%s)" % what)
            if re.match(rb"\* \d+ EXISTS", line):
                seen = time.monotonic() - start
    except (socket.timeout, TimeoutError):
        fail("no EXISTS within %.1f s of %s" % (IDLE_DEADLINE + 1.0, what))
    finally:
        conn.sock.settimeout(20)
    if seen > IDLE_DEADLINE:
        fail("EXISTS for %s after %.2f s (> %.1f s)" % (what, seen, IDLE_DEADLINE))
    conn.send(b"DONE\r\n")
    while True:
        line = conn.readline()
        if not line:
            fail("connection closed after DONE")
        if line.startswith(tag.encode() + b" "):
            if not line.startswith(tag.encode() + b" OK"):
                fail("IDLE completion: %r" % line)
            break
    return round(seen, 3)


def main():
    if len(sys.argv) not in (7, 8):
        fail(__doc__)
    mode, host, port, user, password, cafile = sys.argv[1:7]
    maildir = sys.argv[7] if len(sys.argv) == 8 else None
    port = int(port)
    report = {"mode": mode}
    conn = login(mode, host, port, user, password, cafile)
    # imaplib keeps the capabilities from before login; ask again (RFC 9051 §6.2.2).
    data = check(*conn.capability(), what="CAPABILITY")
    caps = data[0].decode().upper().split()
    report["capabilities"] = caps
    for cap in ("IMAP4REV1", "IDLE", "MOVE", "UIDPLUS"):
        if cap not in caps:
            fail("%s not advertised after login: %r" % (cap, caps))

    # LIST: INBOX and the demo folders.
    data = check(*conn.list(), what="LIST")
    names = []
    for line in data:
        m = re.match(rb'\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) (?P<name>.+)$', line)
        if not m:
            fail("LIST line %r" % line)
        names.append(m.group("name").decode().strip('"'))
    if "INBOX" not in names:
        fail("INBOX missing from LIST: %r" % names)
    report["folders"] = names

    # SELECT INBOX.
    data = check(*conn.select("INBOX"), what="SELECT INBOX")
    count = exists_count(data)
    if count < 1:
        fail("INBOX is empty; the demo has sample mail")
    report["inbox_messages"] = count

    # FETCH BODYSTRUCTURE, RFC822.SIZE and BODY[] of the first message.
    data = check(*conn.fetch("1", "(BODYSTRUCTURE RFC822.SIZE)"), "FETCH BODYSTRUCTURE")
    text = data[0] if isinstance(data[0], bytes) else data[0][0]
    if b"BODYSTRUCTURE (" not in text:
        fail("no BODYSTRUCTURE in %r" % data)
    size = int(re.search(rb"RFC822\.SIZE (\d+)", text).group(1))
    data = check(*conn.fetch("1", "(BODY.PEEK[])"), "FETCH BODY[]")
    body = data[0][1]
    if len(body) != size:
        fail("BODY[] is %d octets, RFC822.SIZE said %d" % (len(body), size))
    if b"\r\n\r\n" not in body:
        fail("BODY[] has no header/body separator: %r" % body[:200])
    report["first_message_size"] = size

    # APPEND with a literal (imaplib always waits for the server's '+').
    subject = "imaplib interop %s" % uuid.uuid4().hex
    typ, data = conn.append("INBOX", "(\\Seen)", None, message(subject))
    check(typ, data, "APPEND")
    report["append_response"] = data[0].decode(errors="replace")
    data = check(*conn.noop(), what="NOOP")
    data = check(*conn.select("INBOX"), what="SELECT INBOX after APPEND")
    if exists_count(data) != count + 1:
        fail("EXISTS %s after APPEND, expected %d" % (data, count + 1))
    uid = uid_of(conn, subject)
    if "\\Seen" not in flags_of(conn, uid):
        fail("APPEND flags not kept: %r" % flags_of(conn, uid))
    data = check(*conn.uid("FETCH", uid, "(BODY.PEEK[])"), "UID FETCH BODY[]")
    if subject.encode() not in data[0][1]:
        fail("appended message not returned by BODY[]: %r" % data)

    # STORE: add \Flagged, remove \Seen.
    check(*conn.uid("STORE", uid, "+FLAGS", "(\\Flagged)"), "UID STORE +FLAGS")
    check(*conn.uid("STORE", uid, "-FLAGS", "(\\Seen)"), "UID STORE -FLAGS")
    flags = flags_of(conn, uid)
    if "\\Flagged" not in flags or "\\Seen" in flags:
        fail("flags after STORE: %r" % flags)

    # A folder of our own for COPY and MOVE.
    folder = "Interop-%s" % uuid.uuid4().hex[:8]
    check(*conn.create(folder), what="CREATE")
    check(*conn.uid("COPY", uid, folder), "UID COPY")
    data = check(*conn.status(folder, "(MESSAGES)"), "STATUS after COPY")
    if b"MESSAGES 1" not in data[0]:
        fail("STATUS after COPY: %r" % data)
    data = check(*conn.select("INBOX"), what="SELECT INBOX before MOVE")
    before_move = exists_count(data)
    check(*conn.uid("MOVE", uid, folder), "UID MOVE")
    data = check(*conn.noop(), what="NOOP after MOVE")
    data = check(*conn.select("INBOX"), what="SELECT INBOX after MOVE")
    if exists_count(data) != before_move - 1:
        fail("INBOX has %s after MOVE, expected %d" % (data, before_move - 1))
    data = check(*conn.status(folder, "(MESSAGES)"), "STATUS after MOVE")
    if b"MESSAGES 2" not in data[0]:
        fail("STATUS after MOVE: %r" % data)

    # EXPUNGE in the folder: only the \Deleted copy goes.
    data = check(*conn.select(folder), what="SELECT folder")
    if exists_count(data) != 2:
        fail("folder EXISTS %r" % data)
    check(*conn.store("1", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    typ, data = conn.expunge()
    check(typ, data, "EXPUNGE")
    data = check(*conn.select(folder), what="SELECT folder after EXPUNGE")
    if exists_count(data) != 1:
        fail("folder has %r after EXPUNGE, expected 1" % data)
    report["copy_move_expunge"] = "ok"

    # IDLE in INBOX: a message APPENDed by a second connection must be announced in < 2 s.
    check(*conn.select("INBOX"), what="SELECT INBOX for IDLE")

    def append_elsewhere():
        other = login(mode, host, port, user, password, cafile)
        check(*other.append("INBOX", None, None, message("idle push %s" % uuid.uuid4().hex)),
              "APPEND from the second connection")
        other.logout()

    report["idle_append_seconds"] = idle_until_exists(conn, append_elsewhere, "APPEND")

    if maildir:
        # Delivery by another program: tmp/ then rename into new/ (the Maildir protocol).
        def drop_into_new():
            name = "%d.interop%s.localhost" % (time.time(), uuid.uuid4().hex)
            tmp = os.path.join(maildir, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(message("maildir drop %s" % uuid.uuid4().hex))
            os.rename(tmp, os.path.join(maildir, "new", name))

        report["idle_maildir_seconds"] = idle_until_exists(conn, drop_into_new, "Maildir drop")

    typ, data = conn.logout()
    if typ != "BYE":
        fail("LOGOUT: %s %r" % (typ, data))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
