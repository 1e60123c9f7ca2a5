"""interimap (QRESYNC two-way sync) between cas-server (remote, IMAPS) and a throwaway
Dovecot reached as a pre-authenticated tunnel (local).

usage: interimap_sync.py IMAPS_PORT CERT_PEM USER PASSWORD SCRATCH_DIR

interimap needs QRESYNC, CONDSTORE, UIDPLUS, LIST-EXTENDED and LIST-STATUS and keeps its
own UID maps, so a server that gets MODSEQ, VANISHED (EARLIER), APPENDUID or UIDNEXT wrong
makes the two sides diverge or the tool abort. Steps:
1. first sync copies every folder and message to Dovecot;
2. changes on both sides (flags, expunge, append, a new folder, a flag conflict), sync;
3. both sides must hold the same messages with the same flags in every folder;
4. a third sync must find nothing to do.
Exits 0 on success, printing each sync's summary.
"""

import imaplib
import os
import re
import ssl
import subprocess
import sys

DOVECOT_IMAP = "/usr/lib/dovecot/imap"


def main():
    port, cert, user, password, scratch = sys.argv[1:]
    local_dir = os.path.join(scratch, "local")
    home = os.path.join(scratch, "home")
    os.makedirs(local_dir, exist_ok=True)
    os.makedirs(home, exist_ok=True)
    # Dovecot refuses mail access as root: run the tunnel's mail process as nobody then.
    uid, gid = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chmod(scratch, 0o755)
    for d in (local_dir, home):
        os.chown(d, uid, gid)
    conf = os.path.join(scratch, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(
            "mail_location = maildir:%s\nmail_home = %s\nlog_path = %s\n"
            "mail_uid = %d\nmail_gid = %d\nfirst_valid_uid = 1\nfirst_valid_gid = 0\n"
            % (local_dir, home, os.path.join(scratch, "dovecot.log"), uid, gid)
        )
    # Dovecot's imap refuses a socket on stdin ("started from inetd"); interimap's tunnel is
    # a socketpair, hence the pipes around it.
    tunnel = "cat | env USER=%s HOME=%s %s -c %s | cat" % (
        "nobody" if os.geteuid() == 0 else os.environ.get("USER", "me"),
        home,
        DOVECOT_IMAP,
        conf,
    )
    config = os.path.join(scratch, "interimap.conf")
    with open(config, "w") as f:
        f.write(
            "database = %s\n\n[local]\ntype = tunnel\ncommand = %s\n\n"
            "[remote]\ntype = imaps\nhost = 127.0.0.1\nport = %s\nusername = %s\n"
            "password = %s\nSSL_CAfile = %s\n"
            % (os.path.join(scratch, "interimap.db"), tunnel, port, user, password, cert)
        )

    def remote():
        ctx = ssl.create_default_context(cafile=cert)
        m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx)
        m.login(user, password)
        return m

    def local():
        return imaplib.IMAP4_stream(tunnel)

    def sync(what):
        run = subprocess.run(
            ["interimap", "--config=" + config] + (["--debug"] if os.environ.get("INTERIMAP_DEBUG") else []),
            capture_output=True,
            text=True,
            timeout=120,
        )
        print("== sync:", what)
        print(run.stdout + run.stderr)
        if run.returncode != 0:
            raise SystemExit("interimap failed (%d)" % run.returncode)
        return run.stdout + run.stderr

    def ok(result, what):
        typ, data = result
        if typ != "OK":
            raise SystemExit("%s: %s %r" % (what, typ, data))
        return data

    sync("initial copy")
    if not state_equal(remote(), local()):
        raise SystemExit("sides differ after the initial sync")

    r = remote()
    ok(r.select("INBOX"), "remote select")
    uids = ok(r.uid("SEARCH", None, "ALL"), "remote search")[0].split()
    if len(uids) < 3:
        raise SystemExit("the demo INBOX has fewer than 3 messages: %r" % uids)
    first, second, third = uids[0].decode(), uids[1].decode(), uids[2].decode()
    header = ok(r.uid("FETCH", third, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"), "remote fetch")
    third_id = header[0][1].decode().split(":", 1)[1].strip()
    ok(r.uid("STORE", first, "+FLAGS", r"(\Flagged)"), "remote flag")
    ok(r.uid("STORE", second, "+FLAGS", r"(\Deleted)"), "remote delete")
    ok(r.expunge(), "remote expunge")
    ok(r.uid("STORE", third, "+FLAGS", "(remote-kw)"), "remote conflicting flag")
    ok(
        r.append(
            "INBOX",
            r"(\Seen)",
            None,
            b"From: a@example.org\r\nSubject: remote-new\r\nMessage-ID: <remote-new@x>\r\n\r\nhello\r\n",
        ),
        "remote append",
    )
    r.logout()

    l = local()
    ok(l.select("INBOX"), "local select")
    found = ok(l.uid("SEARCH", None, "HEADER", "Message-ID", third_id), "local search")[0].split()
    if len(found) != 1:
        raise SystemExit("local copy of %s: %r" % (third_id, found))
    ok(l.uid("STORE", found[0].decode(), "+FLAGS", r"(\Answered local-kw)"), "local conflicting flag")
    ok(
        l.append(
            "INBOX",
            None,
            None,
            b"From: c@example.org\r\nSubject: local-new\r\nMessage-ID: <local-new@x>\r\n\r\nhi\r\n",
        ),
        "local append",
    )
    ok(l.create("Projects"), "local create")
    ok(
        l.append(
            "Projects",
            None,
            None,
            b"From: c@example.org\r\nSubject: in-projects\r\nMessage-ID: <projects@x>\r\n\r\nhi\r\n",
        ),
        "local append to the new folder",
    )
    l.logout()

    sync("changes on both sides")
    remote_state = snapshot(remote(), "/")
    local_state = snapshot(local(), ".")
    if remote_state != local_state:
        for name in sorted(set(remote_state) | set(local_state)):
            print(name, remote_state.get(name), local_state.get(name))
        raise SystemExit("sides differ after the second sync")
    inbox = dict((subject, flags) for subject, flags in remote_state["INBOX"])
    expected = {
        "remote-new": (r"\Seen",),
        "local-new": (),
    }
    for subject, flags in expected.items():
        if subject not in inbox or inbox[subject] != flags:
            raise SystemExit("INBOX %s: %r" % (subject, inbox.get(subject)))
    merged = [f for s, f in remote_state["INBOX"] if "remote-kw" in f]
    if not merged or not {"local-kw", r"\Answered"} <= set(merged[0]):
        raise SystemExit("conflicting flags not merged: %r" % remote_state["INBOX"])
    if "Projects" not in remote_state or len(remote_state["Projects"]) != 1:
        raise SystemExit("the new folder did not reach cas-server: %r" % sorted(remote_state))

    out = sync("nothing to do")
    # (A WARNING here would be, e.g., VANISHED naming a UID the client had already seen go.)
    if re.search(r"(Added|Removed|Updated|Created|WARNING)", out):
        raise SystemExit("the third sync found changes")
    print("interimap sync ok")
    return 0


def snapshot(m, delimiter):
    """{folder: sorted [(subject, sorted flags without \\Recent)]}, folder names with '/'."""
    out = {}
    for line in m.list()[1]:
        name = line.decode().rsplit(" ", 1)[1].strip('"')
        typ, data = m.select('"%s"' % name, readonly=True)
        messages = []
        if typ == "OK" and int(data[0]):
            typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for item in data:
                if isinstance(item, tuple):
                    flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
                    subject = item[1].decode().split(":", 1)[1].strip()
                    messages.append((subject, tuple(sorted(f for f in flags if f != r"\Recent"))))
        out[name.replace(delimiter, "/")] = sorted(messages)
    m.logout()
    return out


def state_equal(r, l):
    return snapshot(r, "/") == snapshot(l, ".")


if __name__ == "__main__":
    sys.exit(main())
