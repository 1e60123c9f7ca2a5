#!/usr/bin/env python3
"""Client-access policy checks with Python's standard poplib, for cas-server's tests/policy.rs.

Prints one JSON object with what it saw; exits 0 when the expectation held, 1 otherwise.

usage:
  pop3_policy.py login HOST PORT CAFILE USER PASSWORD EXPECT
      POP3S login; EXPECT is ok (then STAT), or a response code such as AUTH (the login must
      be refused with -ERR [AUTH]).
  pop3_policy.py connections HOST PORT CAFILE N
      Opens N POP3S connections at once and reports each greeting (or refusal) in order.
  pop3_policy.py hold HOST PORT CAFILE USER PASSWORD
      Logs in, prints READY, waits for a line on stdin, then sends STAT and reports whether
      the session was closed (a policy change revoked it) or still answers.
  pop3_policy.py retr HOST PORT CAFILE USER PASSWORD
      Logs in and reports LIST sizes and, per message, its subject, MIME content types and
      retrieved size; QUITs without deleting.
"""
import email
import email.policy
import json
import poplib
import socket
import ssl
import sys


def context(cafile):
    return ssl.create_default_context(cafile=cafile)


def connect(host, port, cafile):
    return poplib.POP3_SSL(host, int(port), context=context(cafile), timeout=30)


def login(host, port, cafile, user, password, expect):
    result = {"user": user}
    conn = connect(host, port, cafile)
    try:
        conn.user(user)
        reply = conn.pass_(password)
        result["reply"] = reply.decode(errors="replace")
        result["stat"] = list(conn.stat())
        conn.quit()
        ok = expect == "ok"
    except poplib.error_proto as exc:
        text = exc.args[0].decode(errors="replace")
        result["reply"] = text
        ok = expect != "ok" and text.startswith("-ERR [%s]" % expect)
        try:
            conn.quit()
        except Exception:
            pass
    print(json.dumps(result))
    return ok


def connections(host, port, cafile, n):
    socks, greetings = [], []
    for _ in range(int(n)):
        raw = socket.create_connection((host, int(port)), timeout=30)
        tls = context(cafile).wrap_socket(raw, server_hostname=host)
        socks.append(tls)
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = tls.recv(1)
            if not chunk:
                break
            line += chunk
        greetings.append(line.decode(errors="replace").rstrip("\r\n"))
    for s in socks:
        try:
            s.sendall(b"QUIT\r\n")
            s.close()
        except OSError:
            pass
    print(json.dumps({"greetings": greetings}))
    return True


def hold(host, port, cafile, user, password):
    conn = connect(host, port, cafile)
    conn.user(user)
    conn.pass_(password)
    conn.stat()
    print("READY", flush=True)
    sys.stdin.readline()
    result = {}
    try:
        result["stat"] = list(conn.stat())
        result["closed"] = False
        conn.quit()
    except poplib.error_proto as exc:
        result["reply"] = exc.args[0].decode(errors="replace")
        # The server closes right after its -ERR: the next command finds the end.
        try:
            conn.noop()
            result["closed"] = False
        except (poplib.error_proto, OSError, EOFError):
            result["closed"] = True
    except (OSError, EOFError) as exc:
        result["reply"] = repr(exc)
        result["closed"] = True
    print(json.dumps(result))
    return True


def retr(host, port, cafile, user, password):
    conn = connect(host, port, cafile)
    conn.user(user)
    conn.pass_(password)
    conn.stat()
    conn.uidl()
    _, listing, _ = conn.list()
    sizes = [int(line.split()[1]) for line in listing]
    messages = []
    for number in range(1, len(sizes) + 1):
        _, lines, _ = conn.retr(number)
        raw = b"\r\n".join(lines) + b"\r\n"
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = None
        body = msg.get_body(preferencelist=("plain",))
        if body is not None:
            text = body.get_content()
        messages.append({
            "number": number,
            "subject": str(msg["Subject"]),
            "types": [part.get_content_type() for part in msg.walk()],
            "size": len(raw),
            "text": text[:200] if text else None,
            "attachments": [part.get_filename() for part in msg.iter_attachments()],
        })
    conn.quit()
    print(json.dumps({"sizes": sizes, "messages": messages}))
    return True


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    handlers = {"login": login, "connections": connections, "hold": hold, "retr": retr}
    if mode not in handlers:
        print(__doc__, file=sys.stderr)
        return 2
    return 0 if handlers[mode](*args) else 1


if __name__ == "__main__":
    sys.exit(main())
