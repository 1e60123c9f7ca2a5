//! The `[rpc_backend]` section of the config file and its resolved settings.

use std::net::SocketAddr;

use rpch_framing::pdu::AuthLevel;
use serde::Deserialize;

use super::association::DEFAULT_MAX_FRAG;

/// Default RPC over HTTP receive window we announce in CONN/B3 and CONN/C1: 64 KiB, the
/// Windows default (MS-RPCH §2.2.3.5.1 allows 8–256 KiB).
pub const DEFAULT_RECEIVE_WINDOW: u32 = 65_536;

/// Level names accepted by `require_auth_level`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RequiredLevel {
    /// No RPC-level authentication required (the default; HTTP authentication already
    /// guards the proxy).
    #[default]
    None,
    /// `RPC_C_AUTHN_LEVEL_CONNECT` (2).
    Connect,
    /// `RPC_C_AUTHN_LEVEL_PKT_INTEGRITY` (5).
    Integrity,
    /// `RPC_C_AUTHN_LEVEL_PKT_PRIVACY` (6).
    Privacy,
}

impl RequiredLevel {
    /// The `auth_level` value.
    pub fn auth_level(self) -> AuthLevel {
        match self {
            Self::None => AuthLevel::NONE,
            Self::Connect => AuthLevel::CONNECT,
            Self::Integrity => AuthLevel::PKT_INTEGRITY,
            Self::Privacy => AuthLevel::PKT_PRIVACY,
        }
    }
}

/// `[rpc_backend]`: the built-in local RPC server that the RPC proxy (or a client speaking
/// `ncacn_http` directly) reaches.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RpcBackendSection {
    /// Listeners (`IP:PORT`); empty or absent = no backend. The demo uses Exchange's RPC
    /// ports 6001, 6002 and 6004 on 127.0.0.1.
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// What `inq_princ_name` returns (default: the NTLM DNS computer name).
    pub principal_name: Option<String>,
    /// Refuse calls below this level: "none" (default), "connect", "integrity", "privacy".
    pub require_auth_level: Option<RequiredLevel>,
    /// Largest fragment sent and received, 1432–65535 (default 5840).
    pub max_frag: Option<u16>,
    /// RPC over HTTP receive window, 8192–262144 bytes (default 65536).
    pub receive_window: Option<u32>,
}

/// Resolved `[rpc_backend]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcBackendSettings {
    /// Listeners.
    pub listen: Vec<SocketAddr>,
    /// `inq_princ_name`'s answer.
    pub principal_name: String,
    /// The least level a call needs.
    pub require_auth_level: RequiredLevel,
    /// Largest fragment.
    pub max_frag: u16,
    /// Receive window.
    pub receive_window: u32,
}

impl RpcBackendSettings {
    /// Validates the section; `cli_listen`, when not empty, replaces its listeners;
    /// `dns_computer` is the default principal name.
    pub fn resolve(
        s: RpcBackendSection,
        cli_listen: &[SocketAddr],
        dns_computer: &str,
    ) -> Result<Self, crate::config::ConfigError> {
        let invalid = |key, message: &str| crate::config::ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        let max_frag = s.max_frag.unwrap_or(DEFAULT_MAX_FRAG);
        if max_frag < rpch_framing::pdu::Limits::MUST_RECV_FRAG_SIZE {
            return Err(invalid("rpc_backend.max_frag", "must be 1432..=65535"));
        }
        let receive_window = s.receive_window.unwrap_or(DEFAULT_RECEIVE_WINDOW);
        if !rpch_framing::rts::RECEIVE_WINDOW_SIZE_RANGE.contains(&receive_window) {
            return Err(invalid(
                "rpc_backend.receive_window",
                "must be 8192..=262144",
            ));
        }
        if u32::from(max_frag) > receive_window {
            return Err(invalid(
                "rpc_backend.max_frag",
                "must not exceed rpc_backend.receive_window (MS-RPCH §2.2.3.5.1)",
            ));
        }
        let listen = if cli_listen.is_empty() {
            s.listen
        } else {
            cli_listen.to_vec()
        };
        for (i, a) in listen.iter().enumerate() {
            if a.port() != 0 && listen[..i].contains(a) {
                return Err(invalid("rpc_backend.listen", "the same address twice"));
            }
        }
        let principal_name = s.principal_name.unwrap_or_else(|| dns_computer.to_owned());
        if principal_name.len() > 1024 || principal_name.contains('\0') {
            return Err(invalid(
                "rpc_backend.principal_name",
                "at most 1024 bytes, no NUL",
            ));
        }
        Ok(Self {
            listen,
            principal_name,
            require_auth_level: s.require_auth_level.unwrap_or_default(),
            max_frag,
            receive_window,
        })
    }
}

impl Default for RpcBackendSettings {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            principal_name: "localhost".into(),
            require_auth_level: RequiredLevel::None,
            max_frag: DEFAULT_MAX_FRAG,
            receive_window: DEFAULT_RECEIVE_WINDOW,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RpcBackendSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = RpcBackendSettings::resolve(parse(""), &[], "cas01.example").unwrap();
        assert!(s.listen.is_empty());
        assert_eq!(s.principal_name, "cas01.example");
        assert_eq!(s.max_frag, 5840);
        assert_eq!(s.require_auth_level.auth_level(), AuthLevel::NONE);
        let s = RpcBackendSettings::resolve(
            parse(
                "listen = [\"127.0.0.1:6001\", \"127.0.0.1:6002\"]\nrequire_auth_level = \"privacy\"\n",
            ),
            &[],
            "x",
        )
        .unwrap();
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.require_auth_level, RequiredLevel::Privacy);
        let cli = ["127.0.0.1:0".parse().unwrap()];
        let s =
            RpcBackendSettings::resolve(parse("listen = [\"127.0.0.1:6001\"]"), &cli, "x").unwrap();
        assert_eq!(s.listen, cli);
    }

    #[test]
    fn refusals() {
        let err = |t: &str| {
            RpcBackendSettings::resolve(parse(t), &[], "x")
                .unwrap_err()
                .to_string()
        };
        assert!(err("max_frag = 100").contains("max_frag"));
        assert!(err("receive_window = 1000").contains("receive_window"));
        assert!(err("listen = [\"127.0.0.1:6001\", \"127.0.0.1:6001\"]").contains("twice"));
        assert!(toml::from_str::<RpcBackendSection>("require_auth_level = \"maybe\"").is_err());
        assert!(toml::from_str::<RpcBackendSection>("bogus = 1").is_err());
    }
}
