"""HTTP NTLM clients for the cas-server interop tests, against the Outlook Anywhere endpoint.

Every request is an RPC over HTTP echo request (MS-RPCH 2.1.2.1.5: RPC_IN_DATA with
Content-Length 0 on /rpc/rpcproxy.dll), which the endpoint answers only once the client is
authenticated: 401 with challenges before, 200 with the 20-byte echo PDU after.

usage: http_ntlm.py CLIENT URL USER PASSWORD CAFILE EXPECTED_STATUS

CLIENT is requests-ntlm (requests + requests_ntlm, which sends the certificate's channel
bindings over HTTPS), or pyspnego-right, pyspnego-wrong, pyspnego-none: pyspnego's NTLM
client driven over one http.client connection, with the certificate's tls-server-end-point
bindings, the bindings of another certificate, or none. CLIENT negotiate-right,
negotiate-wrong, negotiate-none is pyspnego's pure-Python SPNEGO client (no Kerberos: NTLM
inside SPNEGO) speaking HTTP Negotiate over one connection, with the same three kinds of
bindings; on a 200 it also feeds the server's final token (with its mechListMIC) back and
requires pyspnego to accept it. Exits 0 when the final status is EXPECTED_STATUS.
"""

import base64
import hashlib
import http.client
import ssl
import sys
import urllib.parse

import spnego
from spnego.channel_bindings import GssChannelBindings

METHOD = "RPC_IN_DATA"
# http.client sends no Content-Length for a method it does not know; the echo request has 0.
ECHO = {"Content-Length": "0"}


def with_requests(url, user, password, cafile):
    import requests
    from requests_ntlm import HttpNtlmAuth

    response = requests.request(
        METHOD, url, auth=HttpNtlmAuth(user, password), verify=cafile, timeout=30
    )
    return response.status_code, response.content.hex()


def channel_bindings(kind, conn):
    """tls-server-end-point bindings of the connection's certificate ("right"), of another
    certificate ("wrong"), or None ("none")."""
    if kind == "none":
        return None
    if kind == "right":
        digest = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).digest()
    else:
        digest = hashlib.sha256(b"a different certificate").digest()
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest)


def with_pyspnego(kind, url, user, password, cafile):
    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)

    conn.request(METHOD, parts.path or "/", headers=ECHO)
    first = conn.getresponse()
    first.read()
    offered = first.headers.get_all("WWW-Authenticate") or []
    assert first.status == 401 and "NTLM" in offered, (first.status, offered)

    bindings = channel_bindings(kind, conn)
    client = spnego.client(
        user,
        password,
        hostname=parts.hostname,
        service="http",
        protocol="ntlm",
        channel_bindings=bindings,
        options=spnego.NegotiateOptions.use_ntlm,
    )
    token = base64.b64encode(client.step()).decode()
    conn.request(METHOD, parts.path or "/", headers={"Authorization": "NTLM " + token, **ECHO})
    second = conn.getresponse()
    second.read()
    challenge = second.headers.get("WWW-Authenticate", "")
    assert second.status == 401 and challenge.startswith("NTLM "), (second.status, challenge)

    token = base64.b64encode(client.step(base64.b64decode(challenge[5:]))).decode()
    # The same TCP connection: the NTLM handshake is bound to it.
    conn.request(METHOD, parts.path or "/", headers={"Authorization": "NTLM " + token, **ECHO})
    final = conn.getresponse()
    return final.status, final.read().hex()


def negotiate_token(response):
    """The base64 token of the response's `WWW-Authenticate: Negotiate <token>`, if any."""
    for value in response.headers.get_all("WWW-Authenticate") or []:
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "negotiate" and token.strip():
            return base64.b64decode(token.strip())
    return None


def with_negotiate(kind, url, user, password, cafile):
    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    conn.connect()
    path = parts.path or "/"

    # use_negotiate: pyspnego's own SPNEGO implementation; without gssapi it can only offer
    # NTLM, so no Kerberos is attempted.
    client = spnego.client(
        user,
        password,
        hostname=parts.hostname,
        service="HTTP",
        protocol="negotiate",
        channel_bindings=channel_bindings(kind, conn),
        options=spnego.NegotiateOptions.use_negotiate,
    )
    token = client.step()
    # An InitialContextToken ([APPLICATION 0] with the SPNEGO OID), not a raw NTLM message.
    assert token[:1] == b"\x60" and not token.startswith(b"NTLMSSP"), token[:16]
    for _ in range(4):
        auth = {"Authorization": "Negotiate " + base64.b64encode(token).decode()}
        conn.request(METHOD, path, headers={**auth, **ECHO})
        response = conn.getresponse()
        body = response.read()
        server_token = negotiate_token(response)
        if response.status != 401 or server_token is None:
            break
        assert not client.complete, "server continued after the client completed"
        token = client.step(server_token)
        assert token, "client has nothing more to send"
    else:
        raise AssertionError("handshake did not finish")

    if response.status == 200:
        if server_token is not None:
            # The final NegTokenResp: accept-completed with the server's mechListMIC.
            # pyspnego verifies the MIC; an empty result means nothing more to send.
            out = client.step(server_token)
            assert not out, out
        assert client.complete, "pyspnego did not complete the SPNEGO context"
        # The echo response: application/rpc, the 20-byte echo RTS PDU.
        assert response.headers.get("Content-Type") == "application/rpc", response.headers
        assert len(body) == 20 and body[2] == 20, body
    return response.status, body.hex()


def main():
    kind, url, user, password, cafile, expected = sys.argv[1:7]
    if kind == "requests-ntlm":
        status, body = with_requests(url, user, password, cafile)
    elif kind.startswith("negotiate-"):
        status, body = with_negotiate(kind.removeprefix("negotiate-"), url, user, password, cafile)
    else:
        status, body = with_pyspnego(kind.removeprefix("pyspnego-"), url, user, password, cafile)
    print(status, body)
    return 0 if status == int(expected) else 1


if __name__ == "__main__":
    sys.exit(main())
