//! [`Association`]: one DCE/RPC connection-oriented association (C706 §12, MS-RPCE §3.3),
//! sans-IO. Bytes of client PDUs go in, whole server PDUs come out; time comes in as an
//! argument, randomness through [`SecurityConfig::challenge`].
//!
//! Drain order after every input: [`poll_event`](Association::poll_event), then
//! [`poll_transmit`](Association::poll_transmit) until it returns 0. Read more input only
//! while [`wants_input`](Association::wants_input) is true.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cas_auth::ntlm::{FileTime, SIGNATURE_LEN};
use rpch_framing::codec::{RawPdu, split_pdu};
use rpch_framing::pdu::{
    AuthLevel, AuthType, AuthVerifier, Bind, BindAck, BindNak, BindTimeFeatures, ContextElement,
    ContextResult, DataRepresentation, Fault, FaultStatus, Limits, PacketType, Pdu, PduError,
    PduHeader, PfcFlags, ProviderReason, Reassembled, Reassembler, RejectReason, Response,
    SEC_TRAILER_LEN, SecTrailer, SyntaxId,
};

use super::mgmt::{self, MgmtOutcome, MgmtView};
use super::security::{AuthFailure, AuthStep, ProtectError, SecurityConfig, SecurityContext};

/// Default largest fragment we send and receive: 5840 bytes, what Windows offers on
/// `ncacn_ip_tcp` and `ncacn_http` (MS-RPCE §3.3.1.5.3 leaves it to implementations).
pub const DEFAULT_MAX_FRAG: u16 = 5840;
/// Most presentation contexts one association may hold. Clients use one or two per
/// interface; 64 bounds the table against a peer adding contexts in a loop.
pub const MAX_CONTEXTS: usize = 64;
/// Default bound on PDUs waiting in [`Association::poll_transmit`] before
/// [`Association::wants_input`] turns false: 256 KiB.
pub const DEFAULT_MAX_OUTPUT: usize = 256 * 1024;

/// Bind-time features this server acknowledges (MS-RPCE §3.3.1.5.3): keeping the connection
/// when a call is orphaned is what it does anyway; security context multiplexing is not
/// offered (one security context per association).
const SUPPORTED_FEATURES: BindTimeFeatures = BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN;

/// Request and response headers: 16 common + alloc_hint, p_cont_id and opnum/cancel.
const CALL_HEADER_LEN: usize = 24;

/// Settings shared by all associations of a listener (`Arc`).
#[derive(Clone, Debug)]
pub struct AssociationConfig {
    /// The interfaces a bind may name and `inq_if_ids` lists ([`AssociationConfig::new`]
    /// puts `mgmt` first). Only `mgmt` has operations; calls on another registered
    /// interface fault with `nca_op_rng_error`.
    pub interfaces: Vec<SyntaxId>,
    /// What `inq_princ_name` returns for NTLM and SPNEGO.
    pub principal_name: String,
    /// Largest fragment we send and receive ([`DEFAULT_MAX_FRAG`]); at least 1432
    /// (C706 `must_recv_frag_size`).
    pub max_frag: u16,
    /// The secondary address in `bind_ack` (C706 §12.6.4.4): the listening port, as a
    /// string; Windows sends the port for `ncacn_http` and `ncacn_ip_tcp`.
    pub secondary_address: String,
    /// Calls below this level are refused with `access denied` (default: none required).
    pub min_auth_level: AuthLevel,
    /// RPC-level authentication.
    pub security: SecurityConfig,
    /// Reassembly limits ([`Limits::max_reassembled_stub`] bounds one call's stub).
    pub limits: Limits,
    /// Output bytes above which [`Association::wants_input`] turns false.
    pub max_output: usize,
}

impl AssociationConfig {
    /// A configuration serving `mgmt` with the defaults.
    pub fn new(security: SecurityConfig) -> Self {
        Self {
            interfaces: vec![mgmt::MGMT_INTERFACE],
            principal_name: String::new(),
            max_frag: DEFAULT_MAX_FRAG,
            secondary_address: String::new(),
            min_auth_level: AuthLevel::NONE,
            security,
            limits: Limits::default(),
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }
}

/// Why an association ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the connection.
    Eof,
    /// The client broke the protocol (bad PDU, PDU out of place); the text says how.
    ProtocolError(String),
    /// A bind was refused with `bind_nak`.
    BindRefused(RejectReason),
    /// A request's signature or seal did not verify; the session keys are unusable.
    BadSignature,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("client closed the connection"),
            Self::ProtocolError(why) => write!(f, "protocol error: {why}"),
            Self::BindRefused(r) => write!(f, "bind refused (reason {})", r.0),
            Self::BadSignature => f.write_str("bad request signature"),
        }
    }
}

/// What happened, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A bind was accepted (some contexts may have been rejected).
    Bound {
        /// The association group.
        assoc_group_id: u32,
        /// Contexts accepted with NDR.
        accepted: usize,
        /// Contexts rejected (bind-time feature negotiation elements are not counted).
        rejected: usize,
    },
    /// RPC-level authentication succeeded.
    Authenticated {
        /// The user, as the users file spells it.
        user: String,
        /// NTLM or SPNEGO.
        auth_type: AuthType,
        /// The level.
        level: AuthLevel,
    },
    /// RPC-level authentication failed; the text says why, without credentials.
    AuthenticationFailed {
        /// Why.
        reason: String,
    },
    /// A call was answered with a response or a fault.
    CallCompleted {
        /// The call id.
        call_id: u32,
        /// The operation.
        opnum: u16,
        /// Request stub bytes.
        stub_in: usize,
        /// Response stub bytes (0 for a fault).
        stub_out: usize,
        /// The fault status, if the call faulted.
        fault: Option<FaultStatus>,
    },
    /// The association ended; nothing more is accepted.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

#[derive(Clone, Copy)]
struct PresentationContext {
    id: u16,
    interface: SyntaxId,
}

/// One association: the bind state, presentation contexts, security context and
/// reassembly of one connection's calls.
pub struct Association {
    config: Arc<AssociationConfig>,
    input: BytesMut,
    output: VecDeque<Bytes>,
    output_bytes: usize,
    events: VecDeque<Event>,
    limits: Limits,
    bound: bool,
    max_xmit: u16,
    new_group_id: u32,
    assoc_group_id: u32,
    contexts: Vec<PresentationContext>,
    security: Option<SecurityContext>,
    header_sign: bool,
    reassembler: Reassembler,
    /// The call whose fragments are being dropped after a fault, so one bad call answers
    /// one fault.
    dropped_call: Option<u32>,
    stats: [u32; mgmt::STATS_COUNT],
    closed: bool,
}

impl fmt::Debug for Association {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Association")
            .field("bound", &self.bound)
            .field("assoc_group_id", &self.assoc_group_id)
            .field("security", &self.security)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn drep_le(d: DataRepresentation) -> bool {
    d.0[0] & 0xF0 == 0x10
}

impl Association {
    /// A new association. `assoc_group_id` is the group handed out if the client asks
    /// for a new one (bind with `assoc_group_id` 0); the caller keeps them unique.
    pub fn new(config: Arc<AssociationConfig>, assoc_group_id: u32) -> Self {
        let mut limits = config.limits.clone();
        limits.max_frag_length = config.max_frag.max(Limits::MUST_RECV_FRAG_SIZE);
        Self {
            reassembler: Reassembler::new(limits.clone()),
            limits,
            input: BytesMut::new(),
            output: VecDeque::new(),
            output_bytes: 0,
            events: VecDeque::new(),
            bound: false,
            max_xmit: Limits::MUST_RECV_FRAG_SIZE,
            new_group_id: assoc_group_id.max(1),
            assoc_group_id: 0,
            contexts: Vec::new(),
            security: None,
            header_sign: false,
            dropped_call: None,
            stats: [0; mgmt::STATS_COUNT],
            closed: false,
            config,
        }
    }

    // ------------------------------------------------------------------ getters

    /// Whether the association ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether more input may be read: false once closed or while the output waiting
    /// exceeds [`AssociationConfig::max_output`].
    pub fn wants_input(&self) -> bool {
        !self.closed && self.output_bytes < self.config.max_output
    }

    /// Whether a bind was accepted.
    pub fn is_bound(&self) -> bool {
        self.bound
    }

    /// The negotiated largest fragment we send.
    pub fn max_xmit_frag(&self) -> u16 {
        self.max_xmit
    }

    /// The authenticated user at the RPC level, if any.
    pub fn user(&self) -> Option<&str> {
        self.security
            .as_ref()
            .filter(|s| s.is_established())
            .and_then(|s| s.user())
    }

    /// Bytes buffered of an incomplete PDU (bounded by the fragment limit).
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Bytes of PDUs waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn buffered_output(&self) -> usize {
        self.output_bytes
    }

    // ------------------------------------------------------------------ inputs

    /// Bytes from the client.
    pub fn handle_input(&mut self, now: FileTime, data: &[u8]) {
        if self.closed {
            return;
        }
        self.input.extend_from_slice(data);
        while !self.closed {
            match split_pdu(&mut self.input, &self.limits) {
                Ok(Some(raw)) => self.on_pdu(now, raw),
                Ok(None) => break,
                Err(PduError::UnsupportedVersion { .. }) if !self.bound => {
                    // C706 §12.6.4.5: tell the client which versions we speak.
                    self.bind_nak(
                        RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
                        DataRepresentation::LITTLE_ENDIAN,
                        0,
                    );
                }
                Err(e) => self.close(CloseReason::ProtocolError(e.to_string())),
            }
        }
        if self.closed {
            self.input = BytesMut::new();
        }
    }

    /// The client closed its side.
    pub fn handle_eof(&mut self) {
        self.close(CloseReason::Eof);
    }

    // ------------------------------------------------------------------ outputs

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the next whole PDU to `out`; returns its length, 0 when none is waiting.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        match self.output.pop_front() {
            Some(pdu) => {
                self.output_bytes -= pdu.len();
                out.extend_from_slice(&pdu);
                pdu.len()
            }
            None => 0,
        }
    }

    // ------------------------------------------------------------------ internals

    fn close(&mut self, reason: CloseReason) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(Event::Closed { reason });
        }
    }

    fn queue(&mut self, pdu: Bytes) {
        self.stats[3] = self.stats[3].wrapping_add(1);
        self.output_bytes += pdu.len();
        self.output.push_back(pdu);
    }

    fn encode(&mut self, pdu: &Pdu, header: &PduHeader) {
        let mut out = BytesMut::new();
        match pdu.encode(header, &mut out) {
            Ok(()) => self.queue(out.freeze()),
            // Only oversized tokens or lists can fail; they come from our own bounded data.
            Err(e) => self.close(CloseReason::ProtocolError(format!(
                "cannot encode reply: {e}"
            ))),
        }
    }

    fn reply_header(packet_type: PacketType, call_id: u32, drep: DataRepresentation) -> PduHeader {
        let mut h = PduHeader::new(packet_type, call_id);
        h.data_rep = drep;
        h.pfc_flags = PfcFlags::FIRST_AND_LAST;
        h
    }

    fn bind_nak(&mut self, reason: RejectReason, drep: DataRepresentation, call_id: u32) {
        let nak = Pdu::BindNak(BindNak {
            reject_reason: reason,
            versions: vec![(5, 0)],
            trailing: Bytes::new(),
        });
        self.encode(
            &nak,
            &Self::reply_header(PacketType::BindNak, call_id, drep),
        );
        self.close(CloseReason::BindRefused(reason));
    }

    fn fault(
        &mut self,
        call_id: u32,
        context_id: u16,
        status: FaultStatus,
        executed: bool,
        drep: DataRepresentation,
    ) {
        let mut h = Self::reply_header(PacketType::Fault, call_id, drep);
        if !executed {
            h.pfc_flags = h.pfc_flags.with(PfcFlags::DID_NOT_EXECUTE);
        }
        let fault = Pdu::Fault(Fault {
            alloc_hint: 0,
            context_id,
            cancel_count: 0,
            flags: 0,
            status,
            reserved: 0,
            stub_data: Bytes::new(),
            auth: None,
        });
        self.encode(&fault, &h);
    }

    fn on_pdu(&mut self, now: FileTime, raw: RawPdu) {
        self.stats[2] = self.stats[2].wrapping_add(1);
        let header = raw.header;
        if header.packet_type == PacketType::Request {
            return self.on_request(raw);
        }
        let pdu = match Pdu::decode_with_limits(&raw.bytes, &self.limits) {
            Ok(p) => p,
            Err(e) => {
                if matches!(header.packet_type, PacketType::Bind) && !self.bound {
                    return self.bind_nak(
                        RejectReason::NOT_SPECIFIED,
                        header.data_rep,
                        header.call_id,
                    );
                }
                return self.close(CloseReason::ProtocolError(e.to_string()));
            }
        };
        match pdu {
            Pdu::Bind(b) => self.on_bind(now, &header, b),
            Pdu::AlterContext(b) => self.on_alter_context(now, &header, b),
            Pdu::Auth3(a) => self.on_auth3(now, a.auth),
            Pdu::CoCancel(_) | Pdu::Orphaned(_) => {
                // Calls run to completion as soon as they are whole, so only a call still
                // being reassembled can be cancelled or orphaned: drop its fragments.
                self.reassembler.abandon(header.call_id);
            }
            other => self.close(CloseReason::ProtocolError(format!(
                "{:?} PDU from a client",
                other.packet_type()
            ))),
        }
    }

    /// Presentation context negotiation for a bind or alter_context (C706 §12.6.3.1,
    /// MS-RPCE §3.3.1.5.3).
    fn negotiate(&mut self, elements: &[ContextElement]) -> (Vec<ContextResult>, usize, usize) {
        let mut results = Vec::with_capacity(elements.len());
        let (mut accepted, mut rejected) = (0, 0);
        for el in elements {
            let known = self.config.interfaces.iter().any(|i| {
                i.uuid == el.abstract_syntax.uuid
                    && i.major() == el.abstract_syntax.major()
                    && el.abstract_syntax.minor() <= i.minor()
            });
            let ndr = el.transfer_syntaxes.contains(&SyntaxId::NDR);
            let features = el
                .transfer_syntaxes
                .iter()
                .find_map(SyntaxId::as_bind_time_features);
            let result = if let (false, Some(f)) = (ndr && known, features) {
                results.push(ContextResult::negotiate_ack(BindTimeFeatures(
                    f.0 & SUPPORTED_FEATURES.0,
                )));
                continue;
            } else if !known {
                ContextResult::reject(ProviderReason::ABSTRACT_SYNTAX_NOT_SUPPORTED)
            } else if !ndr {
                // NDR64 and anything else: MS-RPCE lets a server support NDR 2.0 only.
                ContextResult::reject(ProviderReason::TRANSFER_SYNTAXES_NOT_SUPPORTED)
            } else {
                match self.contexts.iter().position(|c| c.id == el.context_id) {
                    Some(i) if self.contexts[i].interface.uuid == el.abstract_syntax.uuid => {
                        ContextResult::accept(SyntaxId::NDR)
                    }
                    // A context id cannot change its interface (C706 §12.6.3.1).
                    Some(_) => ContextResult::reject(ProviderReason::NOT_SPECIFIED),
                    None if self.contexts.len() >= MAX_CONTEXTS => {
                        ContextResult::reject(ProviderReason::LOCAL_LIMIT_EXCEEDED)
                    }
                    None => {
                        self.contexts.push(PresentationContext {
                            id: el.context_id,
                            interface: el.abstract_syntax,
                        });
                        ContextResult::accept(SyntaxId::NDR)
                    }
                }
            };
            if result.result == rpch_framing::pdu::ContextResultCode::ACCEPTANCE {
                accepted += 1;
            } else {
                rejected += 1;
            }
            results.push(result);
        }
        (results, accepted, rejected)
    }

    /// Runs the auth verifier of a bind or alter_context; returns the verifier to answer
    /// with, or the failure.
    fn authenticate(
        &mut self,
        now: FileTime,
        auth: &AuthVerifier,
    ) -> Result<Option<AuthVerifier>, AuthFailure> {
        let t = &auth.trailer;
        let fresh = match &self.security {
            None => true,
            Some(s) => s.auth_type() != t.auth_type || s.context_id() != t.auth_context_id,
        };
        if fresh {
            if self.security.as_ref().is_some_and(|s| s.is_established()) {
                // One security context per association (no multiplexing offered).
                return Err(AuthFailure::Unexpected);
            }
            self.security = Some(SecurityContext::new(
                t.auth_type,
                t.auth_level,
                t.auth_context_id,
            )?);
        }
        let Some(sec) = self.security.as_mut() else {
            return Err(AuthFailure::Unexpected);
        };
        let step = sec.step(&self.config.security, &auth.credentials, now)?;
        let token = match step {
            AuthStep::Continue(t) => Some(t),
            AuthStep::Complete(t) => {
                self.events.push_back(Event::Authenticated {
                    user: sec.user().unwrap_or_default().to_owned(),
                    auth_type: sec.auth_type(),
                    level: sec.level(),
                });
                t
            }
        };
        Ok(token
            .filter(|t| !t.is_empty())
            .map(|credentials| AuthVerifier {
                trailer: SecTrailer {
                    auth_type: t.auth_type,
                    auth_level: t.auth_level,
                    auth_pad_length: 0,
                    auth_reserved: 0,
                    auth_context_id: t.auth_context_id,
                },
                credentials: Bytes::from(credentials),
            }))
    }

    fn on_bind(&mut self, now: FileTime, header: &PduHeader, bind: Bind) {
        let drep = header.data_rep;
        if self.bound {
            // C706 §12.6.4.3: one bind per association; more contexts come by alter_context.
            return self.bind_nak(RejectReason::NOT_SPECIFIED, drep, header.call_id);
        }
        let floor = Limits::MUST_RECV_FRAG_SIZE;
        if bind.max_xmit_frag < floor || bind.max_recv_frag < floor {
            return self.bind_nak(RejectReason::LOCAL_LIMIT_EXCEEDED, drep, header.call_id);
        }
        let ours = self.config.max_frag.max(floor);
        let max_recv = bind.max_xmit_frag.min(ours);
        self.max_xmit = bind.max_recv_frag.min(ours);
        // Joining an existing group is harmless here: groups share context handles, and
        // this server hands out none.
        self.assoc_group_id = if bind.assoc_group_id == 0 {
            self.new_group_id
        } else {
            bind.assoc_group_id
        };
        let (results, accepted, rejected) = self.negotiate(&bind.contexts);
        let auth = match &bind.auth {
            None => None,
            Some(v) => match self.authenticate(now, v) {
                Ok(a) => a,
                Err(e) => {
                    let reason = match e {
                        AuthFailure::UnsupportedType(_)
                        | AuthFailure::UnsupportedLevel(_)
                        | AuthFailure::Disabled => RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED,
                        _ => RejectReason::NOT_SPECIFIED,
                    };
                    self.events.push_back(Event::AuthenticationFailed {
                        reason: e.to_string(),
                    });
                    return self.bind_nak(reason, drep, header.call_id);
                }
            },
        };
        self.bound = true;
        self.limits.max_frag_length = max_recv;
        self.reassembler = Reassembler::new(self.limits.clone());
        self.header_sign =
            bind.auth.is_some() && header.pfc_flags.contains(PfcFlags::SUPPORT_HEADER_SIGN);
        let mut h = Self::reply_header(PacketType::BindAck, header.call_id, drep);
        if self.header_sign {
            h.pfc_flags = h.pfc_flags.with(PfcFlags::SUPPORT_HEADER_SIGN);
        }
        let mut secondary = self.config.secondary_address.as_bytes().to_vec();
        secondary.push(0);
        let mut ack = BindAck {
            max_xmit_frag: self.max_xmit,
            max_recv_frag: max_recv,
            assoc_group_id: self.assoc_group_id,
            secondary_address: Bytes::from(secondary),
            results,
            auth: None,
        };
        self.events.push_back(Event::Bound {
            assoc_group_id: self.assoc_group_id,
            accepted,
            rejected,
        });
        ack.auth = auth.map(|a| Self::pad_verifier(&Pdu::BindAck(ack.clone()), &h, a));
        self.encode(&Pdu::BindAck(ack), &h);
    }

    /// Sets the auth padding that puts a verifier's `sec_trailer` on a 4-byte boundary
    /// after the body of `pdu` (MS-RPCE §2.2.2.11).
    fn pad_verifier(pdu: &Pdu, header: &PduHeader, mut auth: AuthVerifier) -> AuthVerifier {
        let mut scratch = BytesMut::new();
        let body_end = match pdu.encode(header, &mut scratch) {
            Ok(()) => scratch.len(),
            Err(_) => 0,
        };
        auth.trailer.auth_pad_length = SecTrailer::pad_for(body_end, 4);
        auth
    }

    fn on_alter_context(&mut self, now: FileTime, header: &PduHeader, alter: Bind) {
        let drep = header.data_rep;
        if !self.bound {
            return self.close(CloseReason::ProtocolError(
                "alter_context before bind".into(),
            ));
        }
        let (results, _, _) = self.negotiate(&alter.contexts);
        let auth = match &alter.auth {
            None => None,
            Some(v) => match self.authenticate(now, v) {
                Ok(a) => a,
                Err(e) => {
                    self.events.push_back(Event::AuthenticationFailed {
                        reason: e.to_string(),
                    });
                    // MS-RPCE §3.3.1.5.6: a failed security exchange in alter_context is
                    // answered with a fault.
                    return self.fault(header.call_id, 0, FaultStatus::ACCESS_DENIED, false, drep);
                }
            },
        };
        let h = Self::reply_header(PacketType::AlterContextResp, header.call_id, drep);
        let mut resp = BindAck {
            max_xmit_frag: self.max_xmit,
            max_recv_frag: self.limits.max_frag_length,
            assoc_group_id: self.assoc_group_id,
            secondary_address: Bytes::new(),
            results,
            auth: None,
        };
        resp.auth = auth.map(|a| Self::pad_verifier(&Pdu::AlterContextResp(resp.clone()), &h, a));
        self.encode(&Pdu::AlterContextResp(resp), &h);
    }

    fn on_auth3(&mut self, now: FileTime, auth: Option<AuthVerifier>) {
        let outcome = match (&auth, self.security.as_ref()) {
            (Some(v), Some(s))
                if self.bound
                    && s.auth_type() == v.trailer.auth_type
                    && s.context_id() == v.trailer.auth_context_id =>
            {
                self.authenticate(now, v).map(|_| ())
            }
            _ => Err(AuthFailure::Unexpected),
        };
        if let Err(e) = outcome {
            // rpc_auth_3 has no answer (MS-RPCE §2.2.2.10): the next call is refused.
            if let Some(s) = self.security.as_mut() {
                s.mark_failed();
            }
            self.events.push_back(Event::AuthenticationFailed {
                reason: e.to_string(),
            });
        }
    }

    fn on_request(&mut self, raw: RawPdu) {
        let header = raw.header;
        let drep = header.data_rep;
        let call_id = header.call_id;
        if !self.bound {
            self.fault(call_id, 0, FaultStatus::PROTO_ERROR, false, drep);
            return self.close(CloseReason::ProtocolError("request before bind".into()));
        }
        let first = header.pfc_flags.contains(PfcFlags::FIRST_FRAG);
        if first {
            if self.dropped_call == Some(call_id) {
                self.dropped_call = None;
            }
        } else if self.dropped_call == Some(call_id) {
            return;
        }
        let context_id = raw
            .bytes
            .get(20..22)
            .map(|b| {
                if drep_le(drep) {
                    u16::from_le_bytes([b[0], b[1]])
                } else {
                    u16::from_be_bytes([b[0], b[1]])
                }
            })
            .unwrap_or(0);
        let bytes = match self.check_security(&raw) {
            Ok(b) => b,
            Err((status, fatal)) => {
                self.reassembler.abandon(call_id);
                self.dropped_call = Some(call_id);
                self.fault(call_id, context_id, status, false, drep);
                if fatal {
                    self.close(CloseReason::BadSignature);
                }
                return;
            }
        };
        let decoded = match rpch_framing::pdu::Pdu::decode_with_header(&bytes, &self.limits) {
            Ok(d) => d,
            Err(e) => {
                self.fault(call_id, context_id, FaultStatus::PROTO_ERROR, false, drep);
                return self.close(CloseReason::ProtocolError(e.to_string()));
            }
        };
        match self.reassembler.push(decoded) {
            Ok(Reassembled::Complete(call)) => self.execute(call),
            Ok(Reassembled::Pending) | Ok(Reassembled::Other(_)) => {}
            Err(e) => {
                let status = match e {
                    PduError::ReassemblyLimit(_) => FaultStatus::SERVER_TOO_BUSY,
                    _ => FaultStatus::PROTO_ERROR,
                };
                self.reassembler.abandon(call_id);
                self.dropped_call = Some(call_id);
                self.fault(call_id, context_id, status, false, drep);
            }
        }
    }

    /// Verifies or unseals a request fragment per the security context. Err carries the
    /// fault status and whether the association must end (broken session keys).
    fn check_security(&mut self, raw: &RawPdu) -> Result<Bytes, (FaultStatus, bool)> {
        let Some(sec) = self.security.as_mut() else {
            return Ok(raw.bytes.clone());
        };
        if sec.is_failed() || !sec.is_established() {
            return Err((FaultStatus::ACCESS_DENIED, false));
        }
        if !sec.protects_packets() {
            // Connect level: a verifier, if any, is not checked (MS-RPCE §3.3.1.5.2).
            return Ok(raw.bytes.clone());
        }
        let auth_length = usize::from(raw.header.auth_length);
        if auth_length == 0 {
            return Err((FaultStatus::ACCESS_DENIED, false));
        }
        let len = raw.bytes.len();
        let Some(trailer_at) = len
            .checked_sub(auth_length + SEC_TRAILER_LEN)
            .filter(|&t| t >= CALL_HEADER_LEN)
        else {
            return Err((FaultStatus::PROTO_ERROR, true));
        };
        let t = &raw.bytes[trailer_at..trailer_at + SEC_TRAILER_LEN];
        let context_id = if drep_le(raw.header.data_rep) {
            u32::from_le_bytes([t[4], t[5], t[6], t[7]])
        } else {
            u32::from_be_bytes([t[4], t[5], t[6], t[7]])
        };
        if t[0] != sec.auth_type().0 || t[1] != sec.level().0 || context_id != sec.context_id() {
            return Err((FaultStatus::ACCESS_DENIED, false));
        }
        let stub_start = CALL_HEADER_LEN
            + if raw.header.pfc_flags.contains(PfcFlags::OBJECT_UUID) {
                16
            } else {
                0
            };
        let mut buf = BytesMut::from(&raw.bytes[..]);
        match sec.unprotect(&mut buf, stub_start) {
            Ok(()) => Ok(buf.freeze()),
            Err(ProtectError::BadSignature) => Err((FaultStatus::SEC_PKG_ERROR, true)),
            Err(_) => Err((FaultStatus::PROTO_ERROR, true)),
        }
    }

    fn execute(&mut self, call: rpch_framing::pdu::ReassembledCall) {
        self.stats[0] = self.stats[0].wrapping_add(1);
        let drep = call.header.data_rep;
        let call_id = call.header.call_id;
        let fault = |this: &mut Self, status: FaultStatus| {
            this.fault(call_id, call.context_id, status, false, drep);
            this.events.push_back(Event::CallCompleted {
                call_id,
                opnum: call.opnum,
                stub_in: call.stub_data.len(),
                stub_out: 0,
                fault: Some(status),
            });
        };
        let Some(ctx) = self
            .contexts
            .iter()
            .find(|c| c.id == call.context_id)
            .copied()
        else {
            return fault(self, FaultStatus::UNK_IF);
        };
        let level = self
            .security
            .as_ref()
            .filter(|s| s.is_established())
            .map_or(AuthLevel::NONE, |s| s.level());
        if self.config.min_auth_level.0 > AuthLevel::NONE.0
            && level.0 < self.config.min_auth_level.0
        {
            return fault(self, FaultStatus::ACCESS_DENIED);
        }
        let outcome = if ctx.interface.uuid == mgmt::MGMT_INTERFACE.uuid {
            let view = MgmtView {
                interfaces: &self.config.interfaces,
                stats: self.stats,
                principal_name: &self.config.principal_name,
            };
            mgmt::dispatch(&view, call.opnum, &call.stub_data, drep_le(drep))
        } else {
            // A registered interface without an implementation here: nothing to call.
            MgmtOutcome::UnknownOpnum
        };
        match outcome {
            MgmtOutcome::Response(stub) => {
                self.events.push_back(Event::CallCompleted {
                    call_id,
                    opnum: call.opnum,
                    stub_in: call.stub_data.len(),
                    stub_out: stub.len(),
                    fault: None,
                });
                self.respond(call_id, call.context_id, drep, &stub);
            }
            MgmtOutcome::UnknownOpnum => fault(self, FaultStatus::OP_RNG_ERROR),
            MgmtOutcome::BadStub => fault(self, FaultStatus::BAD_STUB_DATA),
        }
    }

    /// Sends a response stub in fragments of at most the negotiated `max_xmit_frag`, each
    /// signed or sealed when the security context protects packets.
    fn respond(&mut self, call_id: u32, context_id: u16, drep: DataRepresentation, stub: &[u8]) {
        let protect = self
            .security
            .as_ref()
            .is_some_and(|s| s.is_established() && s.protects_packets());
        // Room for the stub in one fragment: header, and with protection up to 15 bytes of
        // padding (Windows and Samba pad the stub to 16 when signing or sealing), the
        // sec_trailer and the signature.
        let overhead = CALL_HEADER_LEN
            + if protect {
                15 + SEC_TRAILER_LEN + SIGNATURE_LEN
            } else {
                0
            };
        let room = (usize::from(self.max_xmit) - overhead) & !15;
        let mut offset = 0;
        loop {
            let chunk = &stub[offset..(offset + room).min(stub.len())];
            let mut flags = PfcFlags::default();
            if offset == 0 {
                flags = flags.with(PfcFlags::FIRST_FRAG);
            }
            if offset + chunk.len() >= stub.len() {
                flags = flags.with(PfcFlags::LAST_FRAG);
            }
            let mut h = PduHeader::new(PacketType::Response, call_id);
            h.data_rep = drep;
            h.pfc_flags = flags;
            let auth = self
                .security
                .as_ref()
                .filter(|_| protect)
                .map(|s| AuthVerifier {
                    trailer: SecTrailer {
                        auth_type: s.auth_type(),
                        auth_level: s.level(),
                        auth_pad_length: SecTrailer::pad_for(chunk.len(), 16),
                        auth_reserved: 0,
                        auth_context_id: s.context_id(),
                    },
                    credentials: Bytes::from_static(&[0; SIGNATURE_LEN]),
                });
            let pdu = Pdu::Response(Response {
                alloc_hint: (stub.len() - offset) as u32,
                context_id,
                cancel_count: 0,
                reserved: 0,
                stub_data: Bytes::copy_from_slice(chunk),
                auth,
            });
            let mut out = BytesMut::new();
            if let Err(e) = pdu.encode(&h, &mut out) {
                return self.close(CloseReason::ProtocolError(format!(
                    "cannot encode reply: {e}"
                )));
            }
            if protect
                && let Some(sec) = self.security.as_mut()
                && sec.protect(&mut out, CALL_HEADER_LEN).is_err()
            {
                return self.close(CloseReason::BadSignature);
            }
            self.queue(out.freeze());
            offset += chunk.len();
            if offset >= stub.len() {
                break;
            }
        }
    }
}

#[cfg(test)]
#[path = "association_tests.rs"]
mod tests;
