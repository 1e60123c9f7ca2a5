"""HTTP NTLM clients for the cas-server interop tests (cas-http-auth-test endpoint).

usage: http_ntlm.py CLIENT URL USER PASSWORD CAFILE EXPECTED_STATUS

CLIENT is requests-ntlm (requests + requests_ntlm, which sends the certificate's channel
bindings over HTTPS), or pyspnego-right, pyspnego-wrong, pyspnego-none: pyspnego's NTLM
client driven over one http.client connection, with the certificate's tls-server-end-point
bindings, the bindings of another certificate, or none. Exits 0 when the final status is
EXPECTED_STATUS.
"""

import base64
import hashlib
import http.client
import ssl
import sys
import urllib.parse

import spnego
from spnego.channel_bindings import GssChannelBindings


def with_requests(url, user, password, cafile):
    import requests
    from requests_ntlm import HttpNtlmAuth

    response = requests.get(url, auth=HttpNtlmAuth(user, password), verify=cafile, timeout=30)
    return response.status_code, response.text


def with_pyspnego(kind, url, user, password, cafile):
    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)

    conn.request("GET", parts.path or "/")
    first = conn.getresponse()
    first.read()
    offered = first.headers.get_all("WWW-Authenticate") or []
    assert first.status == 401 and "NTLM" in offered, (first.status, offered)

    bindings = None
    if kind != "none":
        if kind == "right":
            der = conn.sock.getpeercert(binary_form=True)
            digest = hashlib.sha256(der).digest()
        else:
            digest = hashlib.sha256(b"a different certificate").digest()
        bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + digest)
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
    conn.request("GET", parts.path or "/", headers={"Authorization": "NTLM " + token})
    second = conn.getresponse()
    second.read()
    challenge = second.headers.get("WWW-Authenticate", "")
    assert second.status == 401 and challenge.startswith("NTLM "), (second.status, challenge)

    token = base64.b64encode(client.step(base64.b64decode(challenge[5:]))).decode()
    # The same TCP connection: the NTLM handshake is bound to it.
    conn.request("GET", parts.path or "/", headers={"Authorization": "NTLM " + token})
    final = conn.getresponse()
    return final.status, final.read().decode(errors="replace")


def main():
    kind, url, user, password, cafile, expected = sys.argv[1:7]
    if kind == "requests-ntlm":
        status, body = with_requests(url, user, password, cafile)
    else:
        status, body = with_pyspnego(kind.removeprefix("pyspnego-"), url, user, password, cafile)
    print(status, body)
    return 0 if status == int(expected) else 1


if __name__ == "__main__":
    sys.exit(main())
