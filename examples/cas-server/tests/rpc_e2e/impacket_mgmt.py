"""impacket's own mgmt module against cas-server's RPC backend.

Usage: impacket_mgmt.py BINDING USER PASSWORD LEVEL CALLS EXPECT [HTTP_AUTH]

BINDING   an impacket string binding, e.g. ncacn_http:127.0.0.1[6001] (legacy, straight to
          the backend) or ncacn_http:localhost[6001,RpcProxy=127.0.0.1:8443] (through the proxy)
LEVEL     none | connect | integrity | privacy   (RPC-level NTLM; "none" = no RPC auth)
CALLS     how many extra inq_if_ids calls to make after the five operations
EXPECT    ok | access_denied (a call is refused) | auth_failed (RPC-level NTLM refused)
HTTP_AUTH ntlm | basic (only through the proxy; the same USER/PASSWORD)

Prints one line per step and exits 0 when the outcome is the expected one.
"""

import sys

from impacket.dcerpc.v5 import mgmt, transport
from impacket.dcerpc.v5.rpcrt import (
    DCERPCException,
    RPC_C_AUTHN_LEVEL_CONNECT,
    RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
)
from impacket.uuid import bin_to_string

LEVELS = {
    "connect": RPC_C_AUTHN_LEVEL_CONNECT,
    "integrity": RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    "privacy": RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
}
MGMT_UUID = "AFA8BD80-7D8A-11C9-BEF4-08002B102989"


def main():
    binding, user, password, level, calls, expect = sys.argv[1:7]
    http_auth = sys.argv[7] if len(sys.argv) > 7 else None
    calls = int(calls)
    t = transport.DCERPCTransportFactory(binding)
    if http_auth is not None:
        from impacket.dcerpc.v5.rpch import RPC_C_HTTP_AUTHN_SCHEME_BASIC, RPC_C_HTTP_AUTHN_SCHEME_NTLM

        t.set_auth_type(
            RPC_C_HTTP_AUTHN_SCHEME_BASIC if http_auth == "basic" else RPC_C_HTTP_AUTHN_SCHEME_NTLM
        )
    if level != "none" or http_auth is not None:
        # One set of credentials serves the HTTP and the RPC level in impacket.
        t.set_credentials(user, password, "")
    dce = t.get_dce_rpc()
    if level != "none":
        dce.set_auth_level(LEVELS[level])
    dce.connect()
    print("connected", flush=True)
    try:
        dce.bind(mgmt.MSRPC_UUID_MGMT)
        print("bound", flush=True)
        ids = mgmt.hinq_if_ids(dce)
    except DCERPCException as e:
        text = str(e)
        print("refused:", text, flush=True)
        if expect == "access_denied" and "access_denied" in text:
            return 0
        if expect == "auth_failed" and ("access_denied" in text or "auth" in text.lower()):
            return 0
        return 1
    if expect != "ok":
        print("expected a refusal, got an answer", flush=True)
        return 1
    uuids = [bin_to_string(i["Data"]["Uuid"]) for i in ids["if_id_vector"]["if_id"]]
    print("inq_if_ids", ids["if_id_vector"]["count"], uuids, flush=True)
    assert MGMT_UUID in uuids, uuids
    stats = mgmt.hinq_stats(dce)
    print("inq_stats", list(stats["statistics"]), flush=True)
    assert stats["count"] == 4 and stats["statistics"][0] >= 2, stats
    listening = mgmt.his_server_listening(dce)
    print("is_server_listening status", listening["status"], flush=True)
    assert listening["status"] == 0
    name = mgmt.hinq_princ_name(dce, 10, 256)
    princ = b"".join(name["princ_name"]).rstrip(b"\0").decode()
    print("inq_princ_name", princ, name["status"], flush=True)
    assert name["status"] == 0 and princ, name
    small = mgmt.hinq_princ_name(dce, 10, 1)
    assert small["status"] == 122, small["status"]
    try:
        mgmt.hstop_server_listening(dce)
        print("stop_server_listening was not refused", flush=True)
        return 1
    except DCERPCException as e:
        print("stop_server_listening refused:", e, flush=True)
        assert "access_denied" in str(e) or "0x5" in str(e), str(e)
    for _ in range(calls):
        again = mgmt.hinq_if_ids(dce)
        assert again["if_id_vector"]["count"] == ids["if_id_vector"]["count"]
    print("calls", calls, "ok", flush=True)
    dce.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
