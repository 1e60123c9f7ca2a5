//! Property tests: config and value round trips, rule ordering, effective settings,
//! the connection tracker against a model, and the login throttle's guarantees.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use cas_policy::*;
use proptest::prelude::*;

// ---------- generators ----------

fn arb_mime() -> impl Strategy<Value = MimeFormat> {
    prop::sample::select(MimeFormat::ALL.to_vec())
}

fn arb_login_type() -> impl Strategy<Value = LoginType> {
    prop::sample::select(vec![
        LoginType::PlainTextLogin,
        LoginType::PlainTextAuthentication,
        LoginType::SecureLogin,
    ])
}

fn arb_span(low: u64, high: u64) -> impl Strategy<Value = TimeSpan> {
    (low..=high).prop_map(TimeSpan::from_secs)
}

fn arb_ticks_span() -> impl Strategy<Value = TimeSpan> {
    (0u64..20 * 86_400, 0u32..10_000_000)
        .prop_map(|(s, t)| TimeSpan::from_duration(Duration::new(s, t * 100)))
}

fn arb_version() -> impl Strategy<Value = OutlookClientVersion> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        prop::option::of(any::<u16>()),
    )
        .prop_map(|(a, b, c, r)| OutlookClientVersion {
            revision: r,
            ..OutlookClientVersion::new(a, b, c)
        })
}

/// Small components so random versions often fall near range ends.
fn arb_small_key() -> impl Strategy<Value = (u16, u16, u16)> {
    (0u16..4, 0u16..4, 0u16..4)
}

fn arb_range() -> impl Strategy<Value = VersionRange> {
    (arb_small_key(), arb_small_key(), 0..4u8).prop_map(|(a, b, kind)| {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        match kind {
            0 => VersionRange {
                low: Some(a),
                high: Some(a),
                single: true,
            },
            1 => VersionRange {
                low: Some(low),
                high: None,
                single: false,
            },
            2 => VersionRange {
                low: None,
                high: Some(high),
                single: false,
            },
            _ => VersionRange {
                low: Some(low),
                high: Some(high),
                single: false,
            },
        }
    })
}

fn arb_ranges() -> impl Strategy<Value = VersionRanges> {
    prop::collection::vec(arb_range(), 0..5).prop_map(|rs| {
        let text: Vec<String> = rs.iter().map(ToString::to_string).collect();
        VersionRanges::parse(&text.join(";")).unwrap()
    })
}

fn arb_ou() -> impl Strategy<Value = OuPath> {
    prop::collection::vec(
        prop::sample::select(vec!["corp", "sales", "emea", "Eng", "x y", "é"]),
        1..4,
    )
    .prop_map(|segs| OuPath::parse(&segs.join("/")).unwrap())
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::from(v.to_be_bytes())),
        // Dense addresses so ranges actually match.
        (0u8..4, 0u8..4).prop_map(|(a, b)| IpAddr::V4(Ipv4Addr::new(10, 0, a, b))),
    ]
}

fn arb_ip_range() -> impl Strategy<Value = IpRange> {
    prop_oneof![
        arb_ip().prop_map(IpRange::Single),
        arb_ip().prop_flat_map(|ip| {
            let max = if ip.is_ipv4() { 32u8 } else { 128 };
            (Just(ip), 0..=max).prop_map(|(ip, l)| IpRange::Cidr(ip, l))
        }),
        (0u8..4, 0u8..4, 0u8..4, 0u8..4).prop_map(|(a, b, c, d)| {
            let (x, y) = (Ipv4Addr::new(10, 0, a, b), Ipv4Addr::new(10, 0, c, d));
            let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
            IpRange::Range(IpAddr::V4(lo), IpAddr::V4(hi))
        }),
    ]
}

fn arb_bindings(port: u16) -> impl Strategy<Value = Vec<SocketAddr>> {
    prop::collection::btree_set((any::<[u8; 4]>(), port..port + 3), 0..3).prop_map(|set| {
        set.into_iter()
            .map(|(ip, p)| SocketAddr::from((ip, p)))
            .collect()
    })
}

fn arb_host() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec![
        "mail.example.com".to_string(),
        "MBX01".into(),
        "a-b.c".into(),
    ]))
}

fn arb_banner() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-zA-Z0-9 .,\"'#=\\[\\]é]{0,40}")
}

prop_compose! {
    fn arb_pop()(
        lt in arb_login_type(), mc in 1u32..=MAX_CONNECTION_LIMIT, ip in 1u32..=MAX_CONNECTION_LIMIT, pu in 1u32..100,
        pre in arb_span(10, 3_600), auth in arb_span(30, 86_400), cmd in 40u32..=1024, exact in any::<bool>(),
        mime in arb_mime(), desc in any::<bool>(), banner in arb_banner(), log in any::<bool>(), gss in any::<bool>(),
        x509 in arb_host(), plain in arb_bindings(110), tls in arb_bindings(995),
    ) -> PopSettings {
        let mut p = PopSettings::default();
        p.apply(&PopSettingsChange {
            login_type: Some(lt), max_connections: Some(mc), max_connection_from_single_ip: Some(ip),
            max_connections_per_user: Some(pu), pre_authenticated_connection_timeout: Some(pre),
            authenticated_connection_timeout: Some(auth), max_command_size: Some(cmd),
            enable_exact_rfc822_size: Some(exact), message_retrieval_mime_format: Some(mime),
            message_retrieval_sort_order: Some(if desc { SortOrder::Descending } else { SortOrder::Ascending }),
            banner: Some(banner), protocol_log_enabled: Some(log),
            log_file_location: Some(log.then(|| "logs/pop 3".to_string())),
            log_file_roll_over_settings: Some(if log { LogFileRollOver::Hourly } else { LogFileRollOver::Monthly }),
            log_per_file_size_quota: Some(u64::from(mc) * 2), enable_gssapi_and_ntlm_auth: Some(gss),
            extended_protection_policy: Some(ExtendedProtectionPolicy::Allow),
            x509_certificate_name: Some(x509), unencrypted_or_tls_bindings: Some(plain), ssl_bindings: Some(tls),
            ..Default::default()
        }).unwrap();
        p
    }
}

prop_compose! {
    fn arb_imap()(cmd in 1024u32..=16_384, mime in arb_mime(), lt in arb_login_type(), hidden in any::<bool>(), pu in 1u32..100) -> ImapSettings {
        let mut s = ImapSettings::default();
        s.apply(&ImapSettingsChange {
            max_command_size: Some(cmd), message_retrieval_mime_format: Some(mime), login_type: Some(lt),
            show_hidden_folders_enabled: Some(hidden), max_connections_per_user: Some(pu),
            calendar_item_retrieval_option: Some(CalendarItemRetrievalOption::InternetUrl),
            ..Default::default()
        }).unwrap();
        s
    }
}

prop_compose! {
    fn arb_mailbox()(
        ou in prop::option::of(arb_ou()), flags in prop::collection::vec(any::<bool>(), 19),
        pop_mime in arb_mime(), imap_mime in arb_mime(), versions in arb_ranges(), mapi_http in prop::option::of(any::<bool>()),
    ) -> CasMailbox {
        CasMailbox {
            organizational_unit: ou,
            pop_enabled: flags[0], pop_use_protocol_defaults: flags[1], pop_messages_retrieval_mime_format: pop_mime,
            pop_enable_exact_rfc822_size: flags[2], pop_suppress_read_receipt: flags[3],
            pop_force_ical_for_calendar_retrieval_option: flags[4],
            imap_enabled: flags[5], imap_use_protocol_defaults: flags[6], imap_messages_retrieval_mime_format: imap_mime,
            imap_enable_exact_rfc822_size: flags[7], imap_suppress_read_receipt: flags[8],
            imap_force_ical_for_calendar_retrieval_option: flags[9],
            mapi_enabled: flags[10], mapi_block_outlook_rpc_http: flags[11], mapi_block_outlook_non_cached_mode: flags[12],
            mapi_block_outlook_versions: versions, mapi_http_enabled: mapi_http,
            owa_enabled: flags[13], active_sync_enabled: flags[14], ews_enabled: flags[15],
        }
    }
}

fn arb_rule_protocols() -> impl Strategy<Value = Vec<RuleProtocol>> {
    prop::collection::vec(
        prop::sample::select(vec![
            RuleProtocol::POP3,
            RuleProtocol::IMAP4,
            RuleProtocol::OutlookAnywhere,
            RuleProtocol::REST,
        ]),
        0..3,
    )
}

fn arb_auth_types() -> impl Strategy<Value = Vec<AuthenticationType>> {
    prop::collection::vec(
        prop::sample::select(vec![
            AuthenticationType::BasicAuthentication,
            AuthenticationType::NonBasicAuthentication,
        ]),
        0..2,
    )
}

prop_compose! {
    fn arb_rule()(
        allow in any::<bool>(), enabled in prop::bool::weighted(0.8), priority in prop::option::of(0u32..1000),
        protos in arb_rule_protocols(), except_protos in arb_rule_protocols(),
        ips in prop::collection::vec(arb_ip_range(), 0..3), except_ips in prop::collection::vec(arb_ip_range(), 0..2),
        users in prop::collection::vec(prop::sample::select(vec!["a*", "*b*", "carol", "*"]), 0..2),
        ous in prop::collection::vec(arb_ou(), 0..2), auths in arb_auth_types(), except_auths in arb_auth_types(),
    ) -> ClientAccessRule {
        let mut r = ClientAccessRule::new("", if allow { RuleAction::AllowAccess } else { RuleAction::DenyAccess });
        r.enabled = enabled;
        r.priority = priority;
        r.any_of_protocols = protos;
        r.except_any_of_protocols = except_protos;
        r.any_of_client_ip_addresses_or_ranges = ips;
        r.except_any_of_client_ip_addresses_or_ranges = except_ips;
        r.username_matches_any_of_patterns = users.into_iter().map(|u| UserPattern::parse(u).unwrap()).collect();
        r.any_of_organizational_units = ous;
        r.any_of_authentication_types = auths;
        r.except_any_of_authentication_types = except_auths;
        r
    }
}

/// Rules with unique names and unique explicit priorities.
fn arb_rules() -> impl Strategy<Value = Vec<ClientAccessRule>> {
    prop::collection::vec(arb_rule(), 0..6).prop_map(|mut rules| {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in rules.iter_mut().enumerate() {
            r.name = format!("rule-{i}");
            if let Some(p) = r.priority
                && !seen.insert(p)
            {
                r.priority = None;
            }
        }
        rules
    })
}

prop_compose! {
    fn arb_config()(
        org in any::<bool>(), pop in arb_pop(), imap in arb_imap(),
        oa_enabled in any::<bool>(), ext in arb_host(), offload in any::<bool>(),
        mailboxes in prop::collection::btree_map("[a-z][a-z0-9.@_-]{0,8}", arb_mailbox(), 0..5),
        rules in arb_rules(), free in 1u32..10,
    ) -> PolicyConfig {
        let mut c = PolicyConfig::default();
        c.organization.mapi_http_enabled = org;
        c.pop = pop;
        c.imap = imap;
        c.set_outlook_anywhere(&OutlookAnywhereChange {
            enabled: Some(oa_enabled), external_hostname: Some(ext), ssl_offloading: Some(offload),
            valid_ports: Some(vec![RpcPortRange::parse("mbx:6001-6004").unwrap()]),
            ..Default::default()
        }).unwrap();
        c.login_throttle.address_free_failures = free;
        c.mailboxes = mailboxes;
        c.rules = rules;
        c.validate().unwrap();
        c
    }
}

// ---------- round trips ----------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_round_trips(c in arb_config()) {
        let text = c.to_toml_string();
        let back = PolicyConfig::from_toml_str(&text);
        prop_assert_eq!(back.as_ref(), Ok(&c), "{}", text);
        cas_policy::fuzzing::check_config_text(&text);
    }

    #[test]
    fn timespan_round_trips(t in arb_ticks_span()) {
        prop_assert_eq!(TimeSpan::parse(&t.to_string()), Ok(t));
    }

    #[test]
    fn version_ranges_round_trip(r in arb_ranges()) {
        let text = r.to_string();
        prop_assert_eq!(VersionRanges::parse(&text), Ok(r.clone()));
        cas_policy::fuzzing::check_version_ranges(&text);
    }

    #[test]
    fn client_version_round_trips(v in arb_version()) {
        prop_assert_eq!(OutlookClientVersion::parse(&v.to_string()), Ok(v));
    }

    #[test]
    fn ip_range_round_trips(r in arb_ip_range()) {
        prop_assert_eq!(IpRange::parse(&r.to_string()), Ok(r));
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        cas_policy::fuzzing::check_version_ranges(&s);
        cas_policy::fuzzing::check_config_text(&s);
        let _ = IpRange::parse(&s);
        let _ = OuPath::parse(&s);
        let _ = TimeSpan::parse(&s);
        let _ = RpcPortRange::parse(&s);
    }

    #[test]
    fn near_config_text_never_panics(
        lines in prop::collection::vec(prop::sample::select(vec![
            "[PopSettings]", "[ImapSettings]", "[CASMailbox.a]", "[[ClientAccessRule]]", "[OutlookAnywhere]",
            "MaxCommandSize = 41", "MaxCommandSize = -1", "MaxCommandSize = 99999999999", "Name = \"x\"",
            "Action = \"DenyAccess\"", "MAPIBlockOutlookVersions = \"-1.2.3;4.5.6-\"", "Banner = \"a\\r\\nb\"",
            "PreAuthenticatedConnectionTimeout = \"00:00:09\"", "AuthenticatedConnectionTimeout = -5",
            "ValidPorts = [\"*:1-2\"]", "OrganizationalUnit = \"a//b\"", "PopEnabled = false", "Priority = 1",
        ]), 0..12)
    ) {
        cas_policy::fuzzing::check_config_text(&lines.join("\n"));
    }
}

// ---------- semantics against models ----------

fn key(v: &OutlookClientVersion) -> (u16, u16, u16) {
    (v.major, v.minor, v.build)
}

proptest! {
    #[test]
    fn version_matching_matches_model(r in arb_ranges(), v in (0u16..5, 0u16..5, 0u16..5, any::<u16>())) {
        let version = OutlookClientVersion { revision: Some(v.3), ..OutlookClientVersion::new(v.0, v.1, v.2) };
        let k = key(&version);
        let model = r.ranges().iter().any(|range| {
            range.low.is_none_or(|l| l <= k) && range.high.is_none_or(|h| k <= h)
        });
        prop_assert_eq!(r.blocks(&version), model);
    }

    #[test]
    fn cidr_and_range_match_model(r in arb_ip_range(), ip in arb_ip()) {
        let bits = |a: IpAddr| match a { IpAddr::V4(v) => (true, u128::from(u32::from(v))), IpAddr::V6(v) => (false, u128::from(v)) };
        let (f, x) = bits(ip);
        let model = match r {
            IpRange::Single(a) => bits(a) == (f, x),
            IpRange::Range(lo, hi) => bits(lo).0 == f && bits(lo).1 <= x && x <= bits(hi).1,
            IpRange::Cidr(base, len) => {
                let (bf, b) = bits(base);
                let width = if bf { 32 } else { 128 };
                let mask: u128 = if len == 0 { 0 } else { (u128::MAX << (128 - u32::from(len))) >> (128 - width) };
                bf == f && (b & mask) == (x & mask)
            }
        };
        prop_assert_eq!(r.contains(ip), model);
    }

    #[test]
    fn wildcard_matches_model(p in "[ab*]{0,6}", s in "[ab]{0,6}") {
        fn model(p: &[u8], s: &[u8]) -> bool {
            match (p.first(), s.first()) {
                (None, _) => s.is_empty(),
                (Some(b'*'), _) => model(&p[1..], s) || (!s.is_empty() && model(p, &s[1..])),
                (Some(c), Some(d)) => c == d && model(&p[1..], &s[1..]),
                (Some(_), None) => false,
            }
        }
        if let Ok(pattern) = UserPattern::parse(&p) {
            prop_assert_eq!(pattern.matches(&s), model(p.as_bytes(), s.as_bytes()));
        }
    }

    /// First match wins: the decision equals the action of the first enabled rule (by
    /// priority, then file order) whose conditions all hold.
    #[test]
    fn rules_first_match_wins(
        rules in arb_rules(), ip in arb_ip(), user in prop::sample::select(vec!["alice", "bob", "carol", "ab"]),
        ou in prop::option::of(arb_ou()), basic in any::<bool>(), protocol in prop::sample::select(vec![Protocol::Pop3, Protocol::Imap4, Protocol::MapiHttp]),
    ) {
        let mut config = PolicyConfig::default();
        config.pop.login_type = LoginType::PlainTextLogin;
        config.imap.login_type = LoginType::PlainTextLogin;
        config.add_mailbox(user, ou.clone()).unwrap();
        config.rules = rules.clone();
        let policy = Policy::new(config).unwrap();
        let mech = if basic { AuthMechanism::SaslPlain } else { AuthMechanism::Negotiate };
        let mech = if protocol == Protocol::MapiHttp && basic { AuthMechanism::HttpBasic } else { mech };
        // Model: sort by (priority or MAX, unprioritised after, index), filter enabled.
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by_key(|&i| (rules[i].priority.unwrap_or(u32::MAX), rules[i].priority.is_none(), i));
        let holds = |r: &ClientAccessRule| {
            let proto = protocol.rule_protocol();
            let auth = mech.authentication_type();
            let in_ou = |list: &[OuPath]| ou.as_ref().is_some_and(|o| list.iter().any(|top| top.contains(o)));
            (r.any_of_protocols.is_empty() || r.any_of_protocols.contains(&proto))
                && !r.except_any_of_protocols.contains(&proto)
                && (r.any_of_client_ip_addresses_or_ranges.is_empty() || r.any_of_client_ip_addresses_or_ranges.iter().any(|x| x.contains(ip)))
                && !r.except_any_of_client_ip_addresses_or_ranges.iter().any(|x| x.contains(ip))
                && (r.username_matches_any_of_patterns.is_empty() || r.username_matches_any_of_patterns.iter().any(|p| p.matches(user)))
                && (r.any_of_organizational_units.is_empty() || in_ou(&r.any_of_organizational_units))
                && (r.any_of_authentication_types.is_empty() || r.any_of_authentication_types.contains(&auth))
                && !r.except_any_of_authentication_types.contains(&auth)
        };
        let first = order.iter().map(|&i| &rules[i]).filter(|r| r.enabled).find(|r| holds(r));
        let decision = policy.authorize_login(user, protocol, mech, true, ip, Duration::ZERO);
        match first {
            Some(r) if r.action == RuleAction::DenyAccess => {
                prop_assert_eq!(decision.denial().map(|d| d.reason.clone()), Some(DenialReason::RuleDenied { rule: r.name.clone() }));
            }
            _ => prop_assert!(decision.is_allowed(), "{:?}", decision),
        }
        prop_assert_eq!(policy.matching_rule(user, protocol, mech, ip), first.map(|r| r.name.as_str()));
        // Connection time never denies a login that would be allowed.
        if decision.is_allowed() {
            prop_assert!(policy.admit_connection(protocol, ip, true, Duration::ZERO).is_allowed());
        }
    }

    /// Effective POP3/IMAP settings: the mailbox's own values apply exactly when the
    /// protocol is enabled and UseProtocolDefaults is false; disabled protocols are
    /// refused at login whatever else is set.
    #[test]
    fn effective_settings_rules(c in arb_config(), m in arb_mailbox()) {
        let mut c = c;
        c.rules.clear();
        c.mailboxes.insert("zed".into(), m.clone());
        let p = Policy::new(c.clone()).unwrap();
        let pop = p.effective_settings("zed", Protocol::Pop3);
        prop_assert_eq!(pop.enabled, m.pop_enabled);
        let own = m.pop_enabled && !m.pop_use_protocol_defaults;
        prop_assert_eq!(pop.message_retrieval_mime_format, if own { m.pop_messages_retrieval_mime_format } else { c.pop.message_retrieval_mime_format });
        prop_assert_eq!(pop.enable_exact_rfc822_size, if own { m.pop_enable_exact_rfc822_size } else { c.pop.enable_exact_rfc822_size });
        prop_assert_eq!(pop.max_command_size, Some(c.pop.max_command_size));
        let imap = p.effective_settings("ZED", Protocol::Imap4);
        let own = m.imap_enabled && !m.imap_use_protocol_defaults;
        prop_assert_eq!(imap.message_retrieval_mime_format, if own { m.imap_messages_retrieval_mime_format } else { c.imap.message_retrieval_mime_format });
        prop_assert_eq!(imap.suppress_read_receipt, if own { m.imap_suppress_read_receipt } else { c.imap.suppress_read_receipt });
        let mapi_http = p.effective_settings("zed", Protocol::MapiHttp).enabled;
        prop_assert_eq!(mapi_http, m.mapi_enabled && m.mapi_http_enabled.unwrap_or(c.organization.mapi_http_enabled));
        let rpc = p.effective_settings("zed", Protocol::OutlookAnywhere).enabled;
        prop_assert_eq!(rpc, m.mapi_enabled && !m.mapi_block_outlook_rpc_http && c.outlook_anywhere.enabled);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for protocol in [Protocol::Pop3, Protocol::Imap4, Protocol::Owa, Protocol::ActiveSync, Protocol::Ews] {
            let enabled = p.effective_settings("zed", protocol).enabled;
            let d = p.authorize_login("zed", protocol, AuthMechanism::SaslPlain, true, a, Duration::ZERO);
            // With TLS and no rules only the protocol switch (and GSSAPI switch, not
            // involved for PLAIN) can refuse.
            prop_assert_eq!(d.is_allowed(), enabled);
            if !enabled {
                prop_assert_eq!(d.denial().unwrap().reason.clone(), DenialReason::ProtocolDisabled(protocol));
            }
        }
    }

    #[test]
    fn out_of_range_errors_name_key_and_range(v in prop_oneof![0u32..40, 1025u32..100_000], imap in 0u32..1024) {
        let e = PolicyConfig::from_toml_str(&format!("[PopSettings]\nMaxCommandSize = {v}\n")).unwrap_err().to_string();
        prop_assert!(e.contains("PopSettings.MaxCommandSize") && e.contains("40..=1024") && e.contains(&v.to_string()), "{}", e);
        let e = PolicyConfig::from_toml_str(&format!("[ImapSettings]\nMaxCommandSize = {imap}\n")).unwrap_err().to_string();
        prop_assert!(e.contains("ImapSettings.MaxCommandSize") && e.contains("1024..=16384"), "{}", e);
    }
}

// ---------- connection tracker, model-based ----------

#[derive(Debug, Clone)]
enum Op {
    Admit(u8),
    Bind(usize, u8),
    Release(usize),
    SetLimits(u32, u32, u32),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::Admit),
        3 => (0usize..40, 0u8..3).prop_map(|(c, u)| Op::Bind(c, u)),
        3 => (0usize..40).prop_map(Op::Release),
        1 => (1u32..8, 1u32..4, 1u32..3).prop_map(|(a, b, c)| Op::SetLimits(a, b, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tracker_matches_model(ops in prop::collection::vec(arb_op(), 0..80)) {
        let users = ["alice", "bob", "Carol"];
        let mut limits = ConnectionLimits { max_connections: 6, max_connection_from_single_ip: 3, max_connections_per_user: 2 };
        let mut t = ConnectionTracker::new(limits);
        // Model: every ticket ever issued, with (ip, user, live).
        let mut issued: Vec<(ConnectionTicket, IpAddr, Option<&str>, bool)> = Vec::new();
        for op in ops {
            match op {
                Op::Admit(i) => {
                    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
                    let live = issued.iter().filter(|c| c.3).count() as u32;
                    let from_ip = issued.iter().filter(|c| c.3 && c.1 == ip).count() as u32;
                    match t.try_admit(ip) {
                        Ok(tk) => {
                            prop_assert!(live < limits.max_connections && from_ip < limits.max_connection_from_single_ip);
                            issued.push((tk, ip, None, true));
                        }
                        Err(d) => prop_assert!(live >= limits.max_connections || from_ip >= limits.max_connection_from_single_ip, "{:?}", d),
                    }
                }
                Op::Bind(c, u) => {
                    let Some(&(tk, _, bound, live)) = issued.get(c) else { continue };
                    let user = users[usize::from(u)];
                    let of_user = issued.iter().filter(|x| x.3 && x.2.is_some_and(|b| b.eq_ignore_ascii_case(user))).count() as u32;
                    let same = bound.is_some_and(|b| b.eq_ignore_ascii_case(user));
                    match t.bind_user(tk, user) {
                        Ok(()) => {
                            if live && !same {
                                prop_assert!(of_user < limits.max_connections_per_user);
                                issued[c].2 = Some(user);
                            }
                        }
                        Err(_) => prop_assert!(live && !same && of_user >= limits.max_connections_per_user),
                    }
                }
                Op::Release(c) => {
                    let Some(&(tk, _, _, live)) = issued.get(c) else { continue };
                    prop_assert_eq!(t.release(tk), live);
                    issued[c].3 = false;
                }
                Op::SetLimits(a, b, c) => {
                    limits = ConnectionLimits { max_connections: a, max_connection_from_single_ip: b, max_connections_per_user: c };
                    t.set_limits(limits);
                }
            }
            // Counts equal the model's.
            prop_assert_eq!(t.total(), issued.iter().filter(|c| c.3).count());
            for i in 0..4u8 {
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
                prop_assert_eq!(t.from_address(ip) as usize, issued.iter().filter(|c| c.3 && c.1 == ip).count());
            }
            for u in users {
                prop_assert_eq!(t.of_user(u) as usize, issued.iter().filter(|c| c.3 && c.2.is_some_and(|b| b.eq_ignore_ascii_case(u))).count());
            }
        }
        // Releasing everything (twice) leaves nothing behind.
        for c in &issued {
            t.release(c.0);
            t.release(c.0);
        }
        prop_assert_eq!(t.footprint(), (0, 0, 0));
    }
}

// ---------- login throttle ----------

#[derive(Debug, Clone)]
enum Attempt {
    Fail { ip: u8, user: u8 },
    Succeed { ip: u8, user: u8 },
    Wait(u64),
}

fn arb_attempt(ips: u8) -> impl Strategy<Value = Attempt> {
    prop_oneof![
        6 => (0..ips, 0u8..3).prop_map(|(ip, user)| Attempt::Fail { ip, user }),
        1 => (0..ips, 0u8..3).prop_map(|(ip, user)| Attempt::Succeed { ip, user }),
        2 => (0u64..120_000).prop_map(Attempt::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Consecutive failures from one address never shorten its delay, and the delay
    /// never exceeds the cap.
    #[test]
    fn backoff_is_monotonic_and_capped(n in 1usize..60, base_ms in 100u64..5_000, cap_s in 5u64..2_000) {
        let config = ThrottleConfig {
            base_delay: TimeSpan::from_duration(Duration::from_millis(base_ms)),
            address_max_delay: TimeSpan::from_secs(cap_s),
            ..ThrottleConfig::default()
        };
        prop_assume!(config.validate().is_ok());
        let mut t = LoginThrottle::new(config.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut previous = Duration::ZERO;
        for i in 0..n {
            let now = Duration::from_secs(1);
            t.record_failure(&format!("user{i}"), ip, now);
            let delay = match t.check_address(ip, now) {
                Decision::Allow => Duration::ZERO,
                Decision::Deny(d) => match d.reason {
                    DenialReason::LoginDelay { retry_after } => retry_after,
                    other => panic!("{other:?}"),
                },
            };
            prop_assert!(delay >= previous);
            prop_assert!(delay <= config.address_max_delay.as_duration());
            prop_assert_eq!(delay.is_zero(), i < config.address_free_failures as usize);
            previous = delay;
        }
        let mut last = Duration::ZERO;
        for f in 0..200u32 {
            let d = config.delay_after(f, config.address_free_failures, config.address_max_delay);
            prop_assert!(d >= last);
            last = d;
        }
    }

    /// One address alone can never delay a user for other addresses, whatever it does
    /// and however time passes.
    #[test]
    fn one_address_cannot_lock_out_a_user(attempts in prop::collection::vec(arb_attempt(1), 0..200)) {
        let mut t = LoginThrottle::new(ThrottleConfig::default());
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        let owner: IpAddr = "198.51.100.1".parse().unwrap();
        let mut now = Duration::ZERO;
        for a in attempts {
            match a {
                Attempt::Fail { user, .. } => t.record_failure(&format!("u{user}"), attacker, now),
                Attempt::Succeed { user, .. } => t.record_success(&format!("u{user}"), attacker, now),
                Attempt::Wait(ms) => now += Duration::from_millis(ms),
            }
            for u in 0..3 {
                let user = format!("u{u}");
                prop_assert!(t.check(&user, owner, now).is_allowed(), "{} locked out", user);
            }
        }
    }

    /// The address is checked first: when it is delayed, the denial is the address's
    /// delay whatever the user's state. Memory stays within capacity.
    #[test]
    fn address_first_and_bounded(attempts in prop::collection::vec(arb_attempt(6), 0..300), capacity in 1u32..6) {
        let config = ThrottleConfig { capacity, ..ThrottleConfig::default() };
        let mut t = LoginThrottle::new(config);
        let mut now = Duration::ZERO;
        let ip = |i: u8| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i));
        for a in attempts {
            match a {
                Attempt::Fail { ip: i, user } => t.record_failure(&format!("u{user}"), ip(i), now),
                Attempt::Succeed { ip: i, user } => t.record_success(&format!("u{user}"), ip(i), now),
                Attempt::Wait(ms) => now += Duration::from_millis(ms),
            }
            let (a, u) = t.len();
            prop_assert!(a <= capacity as usize && u <= capacity as usize);
            for i in 0..6 {
                if let Decision::Deny(addr_denial) = t.check_address(ip(i), now) {
                    for u in 0..3 {
                        let user = format!("u{u}");
                        prop_assert_eq!(t.check(&user, ip(i), now), Decision::Deny(addr_denial.clone()));
                    }
                }
            }
        }
    }
}

#[test]
fn user_names_map_case_insensitively_in_tracker_and_policy() {
    let mut config = PolicyConfig::default();
    config.add_mailbox("Alice", None).unwrap();
    let mut m: BTreeMap<String, CasMailbox> = config.mailboxes.clone();
    m.get_mut("Alice").unwrap().pop_enabled = false;
    config.mailboxes = m;
    let p = Policy::new(config).unwrap();
    assert!(!p.effective_settings("alice", Protocol::Pop3).enabled);
    assert!(!p.effective_settings("ALICE", Protocol::Pop3).enabled);
    let _unused: HashMap<u8, u8> = HashMap::new();
}
