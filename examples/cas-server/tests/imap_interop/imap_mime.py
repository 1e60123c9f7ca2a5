#!/usr/bin/env python3
"""What an IMAP client sees of one message under the server's MessageRetrievalMimeFormat.

Logs in over IMAPS with Python's standard imaplib, SELECTs INBOX, finds the message whose
Subject contains SUBJECT and fetches it three ways: RFC822.SIZE with BODYSTRUCTURE,
BODY.PEEK[] whole, and BODY.PEEK[] in 512-octet partial pieces. Checks, independently of the
server's code, that RFC822.SIZE is the length of BODY[], that the pieces put together are
BODY[], and that fetching again gives the same bytes. Prints one JSON object: uid, size,
bodystructure (the raw response text), body (base64) and types (the MIME types Python's
email parser finds in BODY[]). Exits 1 with a message on the first failure.

usage: imap_mime.py HOST PORT USER PASSWORD CAFILE SUBJECT
"""
import base64
import email
import email.policy
import imaplib
import json
import re
import ssl
import sys

PIECE = 512


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(typ, data, what):
    if typ != "OK":
        fail("%s: %s %r" % (what, typ, data))
    return data


def literal_of(data, what):
    """The literal of a FETCH response with one message-data item."""
    for item in data:
        if isinstance(item, tuple):
            return item[1]
    fail("%s: no literal in %r" % (what, data))


def main():
    host, port, user, password, cafile, subject = sys.argv[1:7]
    ctx = ssl.create_default_context(cafile=cafile)
    conn = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx, timeout=20)
    check(*conn.login(user, password), what="LOGIN")
    check(*conn.select("INBOX"), what="SELECT")
    found = check(*conn.uid("SEARCH", "SUBJECT", '"%s"' % subject), what="SEARCH")
    uids = found[0].split()
    if len(uids) != 1:
        fail("SEARCH SUBJECT %r: %r" % (subject, found))
    uid = uids[0].decode()

    meta = check(*conn.uid("FETCH", uid, "(RFC822.SIZE BODYSTRUCTURE)"), what="FETCH meta")
    text = b"".join(m if isinstance(m, bytes) else b"".join(m) for m in meta).decode()
    size = re.search(r"RFC822\.SIZE (\d+)", text)
    if not size:
        fail("no RFC822.SIZE in %r" % text)
    size = int(size.group(1))
    structure = text[text.index("BODYSTRUCTURE"):]

    body = literal_of(check(*conn.uid("FETCH", uid, "(BODY.PEEK[])"), what="FETCH body"), "BODY[]")
    if len(body) != size:
        fail("RFC822.SIZE %d but BODY[] has %d octets" % (size, len(body)))
    again = literal_of(check(*conn.uid("FETCH", uid, "(BODY.PEEK[])"), what="FETCH again"), "BODY[]")
    if again != body:
        fail("a second FETCH BODY[] gave other bytes")

    pieces = b""
    offset = 0
    while True:
        data = check(
            *conn.uid("FETCH", uid, "(BODY.PEEK[]<%d.%d>)" % (offset, PIECE)), what="partial"
        )
        piece = literal_of(data, "BODY[]<%d>" % offset)
        pieces += piece
        offset += PIECE
        if len(piece) < PIECE:
            break
    if pieces != body:
        fail("partial pieces (%d octets) differ from BODY[] (%d)" % (len(pieces), len(body)))

    message = email.message_from_bytes(body, policy=email.policy.default)
    types = [part.get_content_type() for part in message.walk()]
    conn.logout()
    print(
        json.dumps(
            {
                "uid": int(uid),
                "size": size,
                "bodystructure": structure,
                "body": base64.b64encode(body).decode(),
                "types": types,
            }
        )
    )


if __name__ == "__main__":
    main()
