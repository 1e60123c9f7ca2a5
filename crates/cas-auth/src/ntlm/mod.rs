//! NTLM acceptor (MS-NLMP).

pub mod crypto;
pub mod messages;
pub mod session;
