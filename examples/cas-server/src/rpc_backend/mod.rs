//! The built-in local RPC backend speaking `ncacn_http/1.0`: the DCE/RPC management interface (issue 7).
