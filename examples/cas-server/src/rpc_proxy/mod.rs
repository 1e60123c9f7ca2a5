//! Outlook Anywhere: the HTTPS RPC proxy endpoint `/rpc/rpcproxy.dll` (issue 7).
