"""impacket 0.13.1 as an Outlook Anywhere client of cas-server's RPC over HTTP proxy.

usage: oa_client.py MODE PROXY_URL TARGET_HOST TARGET_PORT USER PASSWORD AUTH [ARGS...]

AUTH is ntlm or basic (HTTP-level authentication on both channels). The RPC server behind
the proxy is TARGET_HOST:TARGET_PORT, which goes into the `?server:port` query. MODE:

- calls N SIZE: bind, then N calls (opnum 1) with SIZE-byte stubs; each answer must be the
  same bytes (the test backend echoes). Prints "ok <bytes sent>".
- mgmt [LEVEL [CALLS]]: bind the DCE/RPC management interface and call inq_if_ids with
  impacket's own `mgmt` module; prints the interface UUIDs. LEVEL (none, integrity or
  privacy) adds RPC-level NTLM inside the HTTP tunnel (signed or sealed PDUs); CALLS more
  inq_if_ids calls follow, and "received <bytes>" counts the PDU bytes that came back.
- refused: connecting must fail; prints "refused <first line of the proxy's answer>".
- kill-out: bind, start a call the backend never answers (opnum 8), close the OUT channel's
  socket, and wait until the proxy closes the IN channel; prints "in-closed <seconds>".
- backend-dies: bind, call opnum 7 (the backend dies); the call must fail; prints
  "failed <seconds>".

Exit status 0 when the mode's expectation held.
"""

import signal
import socket
import sys
import time

from impacket.dcerpc.v5 import mgmt, transport
from impacket.dcerpc.v5.rpch import RPCProxyClientException
from impacket.dcerpc.v5.rpcrt import (
    RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
    RPC_C_AUTHN_WINNT,
)
from impacket.http import AUTH_BASIC, AUTH_NTLM
from impacket.uuid import bin_to_string, uuidtup_to_bin

RPC_LEVELS = {
    "integrity": RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    "privacy": RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
}

# Any interface: the test backend accepts every bind.
ECHO_IFACE = uuidtup_to_bin(("12345778-1234-abcd-ef00-0123456789ac", "1.0"))


def connect(proxy_url, host, port, user, password, auth, rpc_level="none"):
    rpctransport = transport.DCERPCTransportFactory("ncacn_http:%s[%s]" % (host, port))
    rpctransport.set_rpc_proxy_url(proxy_url)
    rpctransport.set_credentials(user, password, "")
    rpctransport.set_auth_type(AUTH_BASIC if auth == "basic" else AUTH_NTLM)
    rpctransport.set_connect_timeout(30)
    dce = rpctransport.get_dce_rpc()
    if rpc_level != "none":
        # RPC-level NTLM with the same credentials, on top of the HTTP-level authentication.
        dce.set_credentials(user, password, "")
        dce.set_auth_type(RPC_C_AUTHN_WINNT)
        dce.set_auth_level(RPC_LEVELS[rpc_level])
    dce.connect()
    return rpctransport, dce


def main():
    # Never hang a test run: a client that gets stuck fails on its own.
    signal.alarm(120)
    mode, proxy_url, host, port, user, password, auth = sys.argv[1:8]
    args = sys.argv[8:]
    if mode == "refused":
        try:
            connect(proxy_url, host, port, user, password, auth)
        except RPCProxyClientException as e:
            print("refused", getattr(e, "proxy_error", None) or e)
            return 0
        except Exception as e:  # noqa: BLE001 - any failure to connect is the expectation
            print("refused", e)
            return 0
        print("connected, but a refusal was expected")
        return 1

    rpc_level = args[0] if mode == "mgmt" and args else "none"
    rpctransport, dce = connect(proxy_url, host, port, user, password, auth, rpc_level)
    if mode == "mgmt":
        received = [0]
        recv = rpctransport.recv

        def counting_recv(*a, **kw):
            data = recv(*a, **kw)
            received[0] += len(data)
            return data

        rpctransport.recv = counting_recv
        dce.bind(mgmt.MSRPC_UUID_MGMT)
        resp = mgmt.hinq_if_ids(dce)
        vector = resp["if_id_vector"]
        print("if_ids", vector["count"])
        for entry in vector["if_id"]:
            print("if_id", bin_to_string(entry["Uuid"]), entry["VersMajor"], entry["VersMinor"])
        for _ in range(int(args[1]) if len(args) > 1 else 0):
            again = mgmt.hinq_if_ids(dce)["if_id_vector"]
            assert again["count"] == vector["count"], (again["count"], vector["count"])
        print("received", received[0])
        dce.disconnect()
        return 0

    dce.bind(ECHO_IFACE)
    if mode == "calls":
        count, size = int(args[0]), int(args[1])
        sent = 0
        for i in range(count):
            stub = bytes((i + j) % 251 for j in range(size))
            dce.call(1, stub)
            answer = dce.recv()
            assert answer == stub, (i, len(answer), len(stub))
            sent += len(stub)
        dce.disconnect()
        print("ok", sent)
        return 0
    if mode == "kill-out":
        dce.call(8, b"hang")
        out_sock = rpctransport.get_socket_out()
        in_sock = rpctransport.get_socket_in()
        out_sock.shutdown(socket.SHUT_RDWR)
        out_sock.close()
        started = time.monotonic()
        in_sock.settimeout(60)
        try:
            while in_sock.recv(4096):
                pass
        except (ConnectionError, OSError):
            pass
        print("in-closed %.1f" % (time.monotonic() - started))
        return 0
    if mode == "backend-dies":
        # impacket 0.13.1 reads the OUT channel in `while len(data) < n: data += recv()`
        # loops that spin forever once the socket is at EOF; make EOF an error, as any
        # client that notices a closed connection would.
        read_out = rpctransport.rpc_out_recv1

        def read_out_or_fail(amt=None):
            data = read_out(amt)
            if not data:
                raise ConnectionError("the proxy closed the OUT channel")
            return data

        rpctransport.rpc_out_recv1 = read_out_or_fail
        started = time.monotonic()
        try:
            dce.call(7, b"die")
            dce.recv()
        except Exception as e:  # noqa: BLE001 - the failure is the expectation
            print("failed %.1f %s" % (time.monotonic() - started, type(e).__name__))
            return 0
        print("the call succeeded, but the backend died")
        return 1
    print("unknown mode", mode)
    return 2


if __name__ == "__main__":
    sys.exit(main())
