"""Samba's own ncacn_http client (python3-samba, samba.dcerpc.mgmt) through cas-server's
Outlook Anywhere proxy to an RPC server's management interface.

usage: samba_mgmt.py PROXY_PORT SERVER SERVER_PORT USER PASSWORD HTTP_AUTH RPC_FLAGS CALLS EXPECT

HTTP_AUTH is ntlm, negotiate or basic (Samba's HttpAuthOption); RPC_FLAGS is the binding's RPC-level
protection ("" for Samba's default, or connect, sign, seal); CALLS is how many
inq_if_ids calls to make after the first round (progress is printed every 50); EXPECT is
ok or refused. Prints what each call returned; exits 0 when the outcome is the expected one.
"""

import sys

from samba import NTSTATUSError, credentials, param
from samba.dcerpc import mgmt

MGMT_UUID = "afa8bd80-7d8a-11c9-bef4-08002b102989"


def main():
    proxy_port, server, server_port, user, password, http_auth, flags, calls, expect = sys.argv[1:]
    lp = param.LoadParm()
    # The demo certificate is self-signed; Samba checks peers unless told otherwise.
    lp.set("tls verify peer", "no_check")
    creds = credentials.Credentials()
    creds.guess(lp)
    creds.set_username(user)
    creds.set_password(password)
    creds.set_domain("")
    options = [server_port]
    if flags:
        options.append(flags)
    options += ["RpcProxy=127.0.0.1:%s" % proxy_port, "HttpAuthOption=%s" % http_auth]
    binding = "ncacn_http:%s[%s]" % (server, ",".join(options))
    print("binding", binding)
    try:
        pipe = mgmt.mgmt(binding, lp, creds)
    except NTSTATUSError as e:
        print("refused", e.args)
        return 0 if expect == "refused" else 1
    print("connected", flush=True)
    if expect != "ok":
        return 1

    ids = pipe.inq_if_ids()
    listed = [(str(x.id.uuid), x.id.if_version) for x in ids.if_id if x and x.id]
    print("if_ids", listed)
    if (MGMT_UUID, 1) not in listed:
        return 1
    status, listening = pipe.is_server_listening()
    print("listening", listening, "status", status)
    if (status, listening) != (0, 1):
        return 1
    stats = pipe.inq_stats(4, 0)
    print("stats", stats.count, list(stats.statistics))
    if stats.count != 4 or stats.statistics[0] < 2:
        return 1
    print("princ_name", pipe.inq_princ_name(10, 256))
    for done in range(1, int(calls) + 1):
        if pipe.inq_if_ids().count != ids.count:
            return 1
        if done % 50 == 0:
            print("progress", done, flush=True)
    print("calls", int(calls), "ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
