"""POP3 AUTH NTLM with pyspnego's pure-Python NTLM client, for the cas-server interop tests.

usage: pop3_ntlm.py MODE HOST PORT USER PASSWORD CAFILE EXPECT [BINDINGS]

MODE is pop3s (implicit TLS), stls or plain; USER may be DOMAIN\\user; EXPECT is ok (login
must succeed, then STAT), fail (login must be refused with -ERR [AUTH]) or privacy (AUTH NTLM
itself must be refused with -ERR [AUTH], as LoginType SecureLogin does before TLS); BINDINGS is
none (default), right (the certificate's tls-server-end-point) or wrong (another hash).
"""

import base64
import hashlib
import poplib
import ssl
import sys

import spnego
from spnego.channel_bindings import GssChannelBindings


def bindings(kind, sock):
    if kind == "none":
        return None
    if kind == "right":
        der = sock.getpeercert(binary_form=True)
        digest = hashlib.sha256(der).digest()
    else:
        digest = hashlib.sha256(b"some other certificate").digest()
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest)


def main():
    mode, host, port, user, password, cafile, expect = sys.argv[1:8]
    cb_kind = sys.argv[8] if len(sys.argv) > 8 else "none"
    context = ssl.create_default_context(cafile=cafile)
    if mode == "pop3s":
        pop = poplib.POP3_SSL(host, int(port), context=context, timeout=30)
    else:
        pop = poplib.POP3(host, int(port), timeout=30)
        if mode == "stls":
            pop.stls(context=context)
    capa = pop.capa()
    assert "NTLM" in capa.get("SASL", []), capa

    client = spnego.client(
        user,
        password,
        hostname=host,
        protocol="ntlm",
        channel_bindings=bindings(cb_kind, pop.sock) if mode != "plain" else None,
        options=spnego.NegotiateOptions.use_ntlm,
    )
    try:
        first = pop._shortcmd("AUTH NTLM")
    except poplib.error_proto as e:
        text = e.args[0]
        print("AUTH refused:", text.decode(errors="replace"))
        if expect == "privacy" and text.startswith(b"-ERR [AUTH]"):
            pop.quit()
            return 0
        return 1
    if expect == "privacy":
        print("AUTH NTLM accepted, expected a refusal")
        return 1
    # MS-POP3: the empty challenge is "+ " (plus, space), not "+OK".
    assert first == b"+ ", first
    negotiate = client.step()
    reply = pop._shortcmd(base64.b64encode(negotiate).decode())
    assert reply.startswith(b"+ "), reply
    authenticate = client.step(base64.b64decode(reply[2:]))
    try:
        final = pop._shortcmd(base64.b64encode(authenticate).decode())
    except poplib.error_proto as e:
        text = e.args[0]
        print("refused:", text.decode(errors="replace"))
        if expect == "fail" and text.startswith(b"-ERR [AUTH]"):
            pop.quit()
            return 0
        return 1
    print("accepted:", final.decode(errors="replace"))
    if expect != "ok":
        return 1
    count, size = pop.stat()
    print("STAT", count, size)
    assert count >= 1
    pop.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
