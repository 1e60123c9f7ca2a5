#!/usr/bin/env python3
"""mbsync (isync) round trip against a running IMAP server.

1. Syncs every folder of the account to a local Maildir with mbsync and checks that the local
   INBOX holds what the server's INBOX holds (counted with imaplib).
2. Changes the local copy: flags one message (F), marks another deleted (T, so mbsync's
   `Expunge Both` removes it on the server) and adds a new message to the local INBOX.
3. Syncs again and verifies on the server, over IMAP with imaplib, that the flag arrived, the
   deleted message is gone and the new message is there.

Prints one JSON object and exits 0; exits 1 with a message on the first failure.

usage: mbsync_roundtrip.py MODE HOST PORT USER PASSWORD CAFILE WORKDIR
  MODE: imaps | starttls
"""
import email.parser
import imaplib
import json
import os
import re
import ssl
import subprocess
import sys
import time
import uuid


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def imap(mode, host, port, user, password, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    if mode == "imaps":
        conn = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=20)
    else:
        conn = imaplib.IMAP4(host, port, timeout=20)
        conn.starttls(ssl_context=ctx)
    typ, data = conn.login(user, password)
    if typ != "OK":
        fail("LOGIN: %r" % data)
    return conn


def run_mbsync(rc, home):
    proc = subprocess.run(
        ["mbsync", "--verbose", "--config", rc, "--all"],
        env=dict(os.environ, HOME=home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
    )
    out = proc.stdout.decode(errors="replace")
    print(out, file=sys.stderr)
    if proc.returncode != 0:
        fail("mbsync exited %d" % proc.returncode)
    return out


def local_messages(folder):
    """(path, subject, flags) of every message in a local Maildir folder."""
    found = []
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                headers = email.parser.BytesHeaderParser().parse(f)
            flags = name.split(":2,", 1)[1] if ":2," in name else ""
            found.append((path, str(headers.get("Subject", "")), flags))
    return found


def set_local_flags(path, flags):
    """Renames a local message to carry `flags` (Maildir info, letters in ASCII order)."""
    folder = os.path.dirname(os.path.dirname(path))
    base = os.path.basename(path).split(":2,", 1)[0]
    new = os.path.join(folder, "cur", base + ":2," + "".join(sorted(set(flags))))
    os.rename(path, new)


def server_search(conn, subject):
    typ, data = conn.uid("SEARCH", None, "HEADER", "Subject", '"%s"' % subject)
    if typ != "OK":
        fail("UID SEARCH: %r" % data)
    return data[0].split()


def main():
    if len(sys.argv) != 8:
        fail(__doc__)
    mode, host, port, user, password, cafile, work = sys.argv[1:]
    port = int(port)
    local = os.path.join(work, "mail")
    os.makedirs(local, exist_ok=True)
    rc = os.path.join(work, "mbsyncrc")
    with open(rc, "w") as f:
        f.write(
            "IMAPAccount demo\n"
            "Host %s\nPort %d\nUser %s\nPass \"%s\"\n"
            "SSLType %s\nCertificateFile %s\nSystemCertificates no\n"
            # Left to itself mbsync takes AUTH=NTLM through Cyrus SASL, whose NTLM plugin
            # speaks NTLMv1, which the server rightly refuses (and mbsync does not fall
            # back): ask for SASL PLAIN, over TLS.
            "AuthMechs PLAIN\n"
            "Timeout 60\n\n"
            "IMAPStore demo-far\nAccount demo\n\n"
            "MaildirStore demo-near\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
            "Channel demo\nFar :demo-far:\nNear :demo-near:\nPatterns *\n"
            "Create Both\nExpunge Both\nSyncState *\n"
            % (host, port, user, password, "IMAPS" if mode == "imaps" else "STARTTLS",
               cafile, local, local)
        )
    os.chmod(rc, 0o600)

    conn = imap(mode, host, port, user, password, cafile)
    typ, data = conn.select("INBOX", readonly=True)
    server_count = int(data[0])
    conn.logout()

    run_mbsync(rc, work)
    inbox = os.path.join(local, "INBOX")
    messages = local_messages(inbox)
    if len(messages) != server_count:
        fail("local INBOX has %d messages, server %d" % (len(messages), server_count))
    if len(messages) < 2:
        fail("need two messages in INBOX to change, found %d" % len(messages))
    folders = sorted(d for d in os.listdir(local) if os.path.isdir(os.path.join(local, d)))
    report = {"mode": mode, "synced_messages": len(messages), "local_folders": folders}

    # Local changes. Subjects identify the messages on the server.
    (flag_path, flag_subject, flag_flags) = messages[0]
    (del_path, del_subject, del_flags) = messages[1]
    if not flag_subject or not del_subject or flag_subject == del_subject:
        fail("messages need distinct subjects: %r / %r" % (flag_subject, del_subject))
    set_local_flags(flag_path, flag_flags + "F")
    set_local_flags(del_path, del_flags + "T")
    new_subject = "mbsync interop %s" % uuid.uuid4().hex
    name = "%d.%s.interop" % (time.time(), uuid.uuid4().hex)
    with open(os.path.join(inbox, "tmp", name), "wb") as f:
        f.write(
            ("From: mbsync <m@example.org>\r\nTo: %s@example.org\r\nSubject: %s\r\n"
             "Date: Mon, 23 Nov 2026 15:00:00 +0000\r\n"
             "Message-ID: <%s@example.org>\r\n\r\nwritten locally\r\n"
             % (user, new_subject, uuid.uuid4().hex)).encode()
        )
    os.rename(os.path.join(inbox, "tmp", name), os.path.join(inbox, "new", name))

    run_mbsync(rc, work)

    conn = imap(mode, host, port, user, password, cafile)
    conn.select("INBOX")
    uids = server_search(conn, flag_subject)
    if not uids:
        fail("flagged message %r gone from the server" % flag_subject)
    typ, data = conn.uid("FETCH", uids[0], "(FLAGS)")
    flags = re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).decode().split()
    if "\\Flagged" not in flags:
        fail("local flag not synced: %r has %r" % (flag_subject, flags))
    if server_search(conn, del_subject):
        fail("message %r deleted locally is still on the server" % del_subject)
    if len(server_search(conn, new_subject)) != 1:
        fail("new local message %r not on the server" % new_subject)
    typ, data = conn.select("INBOX")
    if int(data[0]) != server_count:
        fail("server INBOX has %s messages, expected %d (one deleted, one added)"
             % (data[0], server_count))
    conn.logout()
    report["flagged"] = flag_subject
    report["deleted"] = del_subject
    report["added"] = new_subject
    print(json.dumps(report))


if __name__ == "__main__":
    main()
