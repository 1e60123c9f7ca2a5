//! The mailbox commands: each runs as one store operation on the blocking pool and its
//! result is handed to the session (untagged data, the selected-mailbox view, the tagged
//! status). Also the watch of the selected mailbox for changes made by others.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use cas_imap_proto::code::ResponseCode;
use cas_imap_proto::command::{
    Command, CommandBody, FetchAttribute, FetchModifier, ListReturnOption, ListSelectionOption,
    SearchKey, SearchReturnOption, SelectParameter, StoreKind,
};
use cas_imap_proto::response::Status;
use cas_imap_proto::response::{
    Data, Delimiter, ESearch, ESearchItem, FetchItem, MailboxList, NamespaceDescription,
    StatusValue,
};
use cas_imap_proto::server::{
    AppendPayload, Change, CommandId, MessageInfo, SelectedMailbox, ServerSession,
};
use cas_imap_proto::types::{
    Charset, Flag, FlagPerm, IString, Mailbox, MailboxAttribute, ModSeq, NString, SeqOrUid,
    SeqRange, SequenceSet, StatusItem, Tag,
};
use tokio::sync::broadcast;

use super::ImapContext;
use super::app::{ImapApp, Job};
use crate::imap_store::{
    AppendRequest, Changes, CopyUid, DELIMITER, FetchOptions, FetchedMessage, FlagOperation,
    FolderChange, FolderInfo, FolderStatus, MessageFlags, SearchContext, Snapshot, StoreError,
    StoreOutcome, UserStore,
};
use crate::mime::BodyFormat;

/// A logged-in user's mailboxes.
#[derive(Clone, Debug)]
pub(crate) struct UserMailboxes {
    store: UserStore,
}

impl UserMailboxes {
    /// Opens `user`'s mailboxes (blocking: the Maildir may be created).
    pub(crate) fn open(ctx: &ImapContext, user: &str) -> Result<Self, String> {
        let store = ctx.store.user(user).map_err(|e| e.to_string())?;
        // INBOX exists for every user; a failure here is a broken store, not a bad login.
        store.status("INBOX").map_err(|e| e.to_string())?;
        Ok(Self { store })
    }
}

/// The selected mailbox as this application sees it: which folder, and what the session
/// has been told, to turn the store's change reports into view changes.
/// Message data a FETCH gathers per batch before it is handed to the session: about this
/// many octets of stored messages (at least one message). A batch is fetched only once the
/// session's queued output is below [`FETCH_RESUME_BELOW`], so `FETCH 1:* BODY[]` of a large
/// mailbox holds a few MiB at a time, not the mailbox.
const FETCH_BATCH_BYTES: u64 = 4 << 20;

/// Queued output under which the next FETCH batch is read.
const FETCH_RESUME_BELOW: usize = 1 << 20;

/// A FETCH being served in batches (message data is read a batch at a time).
pub(crate) struct FetchRun {
    id: CommandId,
    folder: String,
    /// The UIDs asked for, in order; `done` of them are answered.
    uids: Arc<[u32]>,
    done: usize,
    items: Arc<[FetchAttribute<'static>]>,
    set_seen: bool,
    recent: Vec<u32>,
    changed_since: Option<u64>,
    format: BodyFormat,
}

pub(crate) struct Selected {
    folder: String,
    read_only: bool,
    /// Notifications for this folder; `None` once the channel closed.
    changes: Option<broadcast::Receiver<FolderChange>>,
    /// HIGHESTMODSEQ the session's view is up to date with.
    known_modseq: u64,
    /// The modseq of each message the session knows, to tell new changes from echoes of
    /// this session's own.
    modseqs: HashMap<u32, u64>,
    /// The highest UID the session knows.
    max_uid: u32,
    /// `\Recent` UIDs of this session (IMAP4rev1), sorted.
    recent: Vec<u32>,
    /// The MessageRetrievalMimeFormat messages are served in, fixed for the selection (see
    /// [`ImapApp::selection_format`]).
    format: BodyFormat,
}

impl Selected {
    /// Whether notifications are being waited for.
    pub(crate) fn is_watching(&self) -> bool {
        self.changes.is_some()
    }

    /// Resolves at the next notification for the folder (or when the channel lags, which
    /// means the same: look again).
    pub(crate) async fn changed(&mut self) -> MailboxJob {
        let Some(rx) = self.changes.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match rx.recv().await {
                Ok(change)
                    if change.highest_modseq != 0 && change.highest_modseq <= self.known_modseq =>
                {
                    // Already seen (our own write, reported back).
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    return MailboxJob::Notified;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.changes = None;
                    return std::future::pending().await;
                }
            }
        }
    }

    fn apply_changes(&mut self, session: &mut ServerSession, changes: &Changes) {
        let mut expunged = Vec::new();
        for uid in changes.vanished.uids() {
            if self.modseqs.remove(&uid).is_some()
                && let Some(uid) = NonZeroU32::new(uid)
            {
                expunged.push(uid);
            }
        }
        if !expunged.is_empty() {
            session.mailbox_changed(Change::Expunged(expunged));
        }
        for meta in &changes.changed {
            let Some(uid) = NonZeroU32::new(meta.uid) else {
                continue;
            };
            let info = MessageInfo::new(uid, meta.flags.to_flags(), meta.modseq);
            if meta.uid > self.max_uid {
                self.max_uid = meta.uid;
                self.modseqs.insert(meta.uid, meta.modseq);
                session.mailbox_changed(Change::Appended(info));
            } else if let Some(known) = self.modseqs.get_mut(&meta.uid)
                && *known < meta.modseq
            {
                *known = meta.modseq;
                session.mailbox_changed(Change::FlagsChanged(info));
            }
        }
        self.known_modseq = self.known_modseq.max(changes.highest_modseq);
    }
}

/// The result of a mailbox command (or of a change notification).
pub(crate) enum MailboxJob {
    /// The selected folder changed: look what changed.
    Notified,
    /// What changed in the selected folder since the known modseq.
    Changes {
        folder: String,
        result: Result<Changes, StoreError>,
    },
    Selected {
        id: CommandId,
        folder: String,
        read_only: bool,
        format: BodyFormat,
        changes: broadcast::Receiver<FolderChange>,
        result: Result<Snapshot, StoreError>,
    },
    /// A command that ends with a plain status (CREATE, DELETE, RENAME, SUBSCRIBE, ...).
    Done {
        id: CommandId,
        result: Result<(), StoreError>,
    },
    List {
        id: CommandId,
        lines: Result<Vec<ListLine>, StoreError>,
        lsub: bool,
    },
    Status {
        id: CommandId,
        mailbox: Mailbox<'static>,
        items: Vec<StatusItem>,
        result: Result<FolderStatus, StoreError>,
    },
    Expunged {
        id: CommandId,
        result: Result<crate::imap_store::Expunged, StoreError>,
    },
    Search {
        id: CommandId,
        tag: Tag<'static>,
        uid: bool,
        return_options: Option<Vec<SearchReturnOption>>,
        with_modseq: bool,
        result: Result<(Vec<u32>, u64), StoreError>,
    },
    Fetch {
        id: CommandId,
        vanished: Vec<u32>,
        /// The batch's messages and how many of the remaining UIDs it covered.
        result: Result<(Vec<FetchedMessage>, usize), StoreError>,
    },
    Stored {
        id: CommandId,
        result: Result<StoreOutcome, StoreError>,
    },
    Copied {
        id: CommandId,
        moved: bool,
        result: Result<CopyUid, StoreError>,
        /// The selected folder's changes when it was the target.
        sync: Option<Result<Changes, StoreError>>,
    },
    Appended {
        id: CommandId,
        result: Result<crate::imap_store::AppendUid, StoreError>,
        /// The selected folder's changes when it was the target.
        sync: Option<Result<Changes, StoreError>>,
    },
}

/// One LIST/LSUB answer line, with its STATUS when `RETURN (STATUS ...)` asked for it.
pub(crate) struct ListLine {
    name: String,
    attributes: Vec<MailboxAttribute<'static>>,
    child_info: bool,
    status: Option<(Vec<StatusItem>, FolderStatus)>,
}

/// The NO for a store failure: its RFC 5530 code and a client-safe text.
fn store_failure(e: &StoreError) -> (Option<ResponseCode<'static>>, String) {
    let text = match e {
        StoreError::Io(_) => "Internal error in the mail store".to_owned(),
        other => capitalized(&other.to_string()),
    };
    (e.response_code(), text)
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A sequence set of `uids` (ascending or not), consecutive runs as ranges.
fn uid_set(uids: &[u32]) -> Option<SequenceSet> {
    let mut ranges: Vec<SeqRange> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    let push = |ranges: &mut Vec<SeqRange>, (a, b): (u32, u32)| {
        let (Some(a), Some(b)) = (NonZeroU32::new(a), NonZeroU32::new(b)) else {
            return;
        };
        ranges.push(if a == b {
            SeqRange::Single(SeqOrUid::Value(a))
        } else {
            SeqRange::Range(SeqOrUid::Value(a), SeqOrUid::Value(b))
        });
    };
    for &uid in uids {
        run = match run {
            Some((a, b)) if b.checked_add(1) == Some(uid) => Some((a, uid)),
            Some(r) => {
                push(&mut ranges, r);
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    if let Some(r) = run {
        push(&mut ranges, r);
    }
    SequenceSet::new(ranges).ok()
}

/// `COPYUID` for the pairs: both sets in the same order, runs only where both sides are
/// consecutive.
fn copy_uid_code(copy: &CopyUid) -> Option<ResponseCode<'static>> {
    let uid_validity = NonZeroU32::new(copy.uidvalidity)?;
    let mut source = Vec::new();
    let mut destination = Vec::new();
    let mut i = 0;
    while i < copy.pairs.len() {
        let (s0, d0) = copy.pairs[i];
        let mut j = i;
        while j + 1 < copy.pairs.len()
            && copy.pairs[j + 1].0 == copy.pairs[j].0.wrapping_add(1)
            && copy.pairs[j + 1].1 == copy.pairs[j].1.wrapping_add(1)
        {
            j += 1;
        }
        let (s1, d1) = copy.pairs[j];
        let range = |a: u32, b: u32| -> Option<SeqRange> {
            let (a, b) = (NonZeroU32::new(a)?, NonZeroU32::new(b)?);
            Some(if a == b {
                SeqRange::Single(SeqOrUid::Value(a))
            } else {
                SeqRange::Range(SeqOrUid::Value(a), SeqOrUid::Value(b))
            })
        };
        source.push(range(s0, s1)?);
        destination.push(range(d0, d1)?);
        i = j + 1;
    }
    Some(ResponseCode::CopyUid {
        uid_validity,
        source: SequenceSet::new(source).ok()?,
        destination: SequenceSet::new(destination).ok()?,
    })
}

/// The wire form of a folder name: modified UTF-7, or UTF-8 once UTF8=ACCEPT is enabled.
fn wire_mailbox(name: &str, utf8: bool) -> Option<Mailbox<'static>> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Some(Mailbox::Inbox);
    }
    if utf8 {
        Mailbox::from_name_utf8(name).ok()
    } else {
        Mailbox::from_name_mutf7(name).ok()
    }
}

/// A client's mailbox argument as a store name.
fn folder_name(mailbox: &Mailbox<'_>, utf8: bool) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".to_owned()),
        other => other.decode_name(utf8).ok().map(|n| n.into_owned()),
    }
}

/// RFC 9051 §6.3.9 pattern matching: `*` matches anything, `%` anything but the hierarchy
/// delimiter; INBOX is case-insensitive.
fn matches_pattern(name: &str, pattern: &str) -> bool {
    fn go(name: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|i| go(&name[i..], rest)),
            Some(('%', rest)) => (0..=name.len())
                .take_while(|&i| i == 0 || name[i - 1] != DELIMITER)
                .any(|i| go(&name[i..], rest)),
            Some((&c, rest)) => name.first() == Some(&c) && go(&name[1..], rest),
        }
    }
    let (name, pattern) = if name.eq_ignore_ascii_case("INBOX") {
        ("INBOX".to_owned(), {
            let upper: String = pattern.chars().take(5).collect();
            if upper.eq_ignore_ascii_case("INBOX") {
                format!("INBOX{}", pattern.chars().skip(5).collect::<String>())
            } else {
                pattern.to_owned()
            }
        })
    } else {
        (name.to_owned(), pattern.to_owned())
    };
    let n: Vec<char> = name.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    go(&n, &p)
}

/// The LIST lines for `folders`, as RFC 9051 §6.3.9 and RFC 5258 describe them.
#[allow(clippy::too_many_arguments)]
fn list_lines(
    store: &UserStore,
    folders: Vec<FolderInfo>,
    reference: &str,
    patterns: &[String],
    selection: &[ListSelectionOption],
    return_options: &[ListReturnOption],
    lsub: bool,
) -> Result<Vec<ListLine>, StoreError> {
    let subscribed_only = lsub || selection.contains(&ListSelectionOption::Subscribed);
    let special_only = selection.contains(&ListSelectionOption::SpecialUse);
    let recursive = selection.contains(&ListSelectionOption::RecursiveMatch);
    let show_subscribed = subscribed_only || return_options.contains(&ListReturnOption::Subscribed);
    let status_items = return_options.iter().find_map(|o| match o {
        ListReturnOption::Status(items) => Some(items.clone()),
        _ => None,
    });
    let mut lines = Vec::new();
    for folder in &folders {
        let full_matches = patterns.iter().any(|p| {
            let pattern = if p.eq_ignore_ascii_case("INBOX") || reference.is_empty() {
                p.clone()
            } else {
                format!("{reference}{p}")
            };
            matches_pattern(&folder.name, &pattern)
        });
        if !full_matches {
            continue;
        }
        let selected_by_options = (!subscribed_only || folder.subscribed)
            && (!special_only || folder.special_use.is_some());
        // RECURSIVEMATCH: a parent whose child matches the selection is listed with
        // CHILDINFO (RFC 5258 §3.5).
        let child_info = recursive
            && subscribed_only
            && !folder.subscribed
            && folders.iter().any(|c| {
                c.subscribed && c.name.starts_with(&format!("{}{DELIMITER}", folder.name))
            });
        if !selected_by_options && !child_info {
            continue;
        }
        // Plain LIST shows folders and the parents that hold them; names that are only
        // subscribed appear under the SUBSCRIBED selection (and LSUB).
        if !subscribed_only && !folder.exists && !folder.has_children {
            continue;
        }
        let mut attributes: Vec<MailboxAttribute<'static>> = folder
            .attributes()
            .into_iter()
            .filter(|a| show_subscribed || *a != MailboxAttribute::Subscribed)
            .collect();
        if lsub {
            // LSUB (RFC 3501 §6.3.9) knows only \Noselect among these.
            attributes.retain(|a| *a == MailboxAttribute::NoSelect);
        }
        let status = match (&status_items, folder.exists) {
            (Some(items), true) => store.status(&folder.name).ok().map(|s| (items.clone(), s)),
            _ => None,
        };
        lines.push(ListLine {
            name: folder.name.clone(),
            attributes,
            child_info: child_info && !selected_by_options,
            status,
        });
    }
    Ok(lines)
}

fn status_values(
    items: &[StatusItem],
    status: &FolderStatus,
    append_limit: u64,
) -> Vec<StatusValue<'static>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let value = match item {
            StatusItem::Messages => StatusValue::Messages(status.messages),
            StatusItem::Recent => StatusValue::Recent(status.recent),
            StatusItem::UidNext => match NonZeroU32::new(status.uidnext) {
                Some(n) => StatusValue::UidNext(n),
                None => continue,
            },
            StatusItem::UidValidity => match NonZeroU32::new(status.uidvalidity) {
                Some(n) => StatusValue::UidValidity(n),
                None => continue,
            },
            StatusItem::Unseen => StatusValue::Unseen(status.unseen),
            StatusItem::Deleted => StatusValue::Deleted(status.deleted),
            StatusItem::Size => StatusValue::Size(status.size),
            StatusItem::HighestModSeq => StatusValue::HighestModSeq(status.highest_modseq),
            StatusItem::AppendLimit => {
                StatusValue::AppendLimit(Some(u32::try_from(append_limit).unwrap_or(u32::MAX)))
            }
            StatusItem::DeletedStorage => StatusValue::DeletedStorage(0),
            _ => continue,
        };
        out.push(value);
    }
    out
}

/// Whether a SEARCH program uses the MODSEQ key (then the answer carries `(MODSEQ n)`).
fn uses_modseq(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|k| match k {
        SearchKey::ModSeq { .. } => true,
        SearchKey::And(inner) => uses_modseq(inner),
        SearchKey::Not(inner) => uses_modseq(std::slice::from_ref(inner.as_ref())),
        SearchKey::Or(a, b) => {
            uses_modseq(std::slice::from_ref(a.as_ref()))
                || uses_modseq(std::slice::from_ref(b.as_ref()))
        }
        _ => false,
    })
}

impl ImapApp {
    /// The `MessageRetrievalMimeFormat` for a new selection: the user's effective IMAP
    /// setting (ImapSettings, or the mailbox's own value when its ImapUseProtocolDefaults
    /// is false; resolved as POP3 resolves its setting at login) in the policy in force now.
    ///
    /// It is taken once per SELECT/EXAMINE and kept until the mailbox is left, not looked
    /// up per FETCH: mailbox, UIDVALIDITY and UID name one immutable message (RFC 9051
    /// §2.3.1.1) and clients cache its data by UID, so within a selection a policy reload
    /// must not make a message the client already fetched show another body structure,
    /// size or bytes (a client that got BODYSTRUCTURE under one format and then `BODY[2]`
    /// under another would get the wrong part). A reload applies from the next
    /// SELECT/EXAMINE. Clients that keep message data across sessions keep what they
    /// fetched before the change, as with Exchange. The session still ends at once when a
    /// reload takes its access away (`before_input`).
    fn selection_format(&self) -> BodyFormat {
        let Some(user) = self.user.as_deref() else {
            return BodyFormat::BestBodyFormat;
        };
        let settings = self
            .ctx
            .login
            .access
            .policy()
            .policy
            .effective_settings(user, cas_policy::Protocol::Imap4);
        BodyFormat::from(settings.message_retrieval_mime_format)
    }

    fn store(&self) -> Option<UserStore> {
        self.mailboxes.as_ref().map(|m| m.store.clone())
    }

    fn finish(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        status: Status,
        code: Option<ResponseCode<'_>>,
        text: &str,
    ) {
        if let Err(e) = session.finish(id, status, code, text) {
            tracing::debug!(peer = %self.peer, error = %e, "answer not taken by the IMAP session");
        }
    }

    fn fail(&mut self, session: &mut ServerSession, id: CommandId, e: &StoreError) {
        if let StoreError::Io(io) = e {
            tracing::error!(peer = %self.peer, user = ?self.user, error = %io, "IMAP store I/O error");
        }
        let (code, text) = store_failure(e);
        self.finish(session, id, Status::No, code, &text);
    }

    fn run(&mut self, work: impl FnOnce(UserStore) -> MailboxJob + Send + 'static) -> bool {
        let Some(store) = self.store() else {
            return false;
        };
        self.spawn(move || Job::Mailbox(work(store)));
        true
    }

    /// Handles `CommandReceived`.
    pub(super) fn on_command(
        &mut self,
        _now: Instant,
        session: &mut ServerSession,
        id: CommandId,
        command: Command<'static>,
    ) {
        let utf8 = session.is_utf8_enabled();
        let Command { tag, body } = command;
        // Every command below needs a logged-in user; the session checked the state.
        if self.store().is_none()
            && !matches!(body, CommandBody::Id { .. } | CommandBody::Namespace)
        {
            self.finish(
                session,
                id,
                Status::No,
                Some(ResponseCode::Unavailable),
                "Not logged in",
            );
            return;
        }
        let name_of = |m: &Mailbox<'_>| folder_name(m, utf8);
        let examine = matches!(body, CommandBody::Examine { .. });
        let subscribe = matches!(body, CommandBody::Subscribe { .. });
        let moved = matches!(body, CommandBody::Move { .. });
        match body {
            CommandBody::Id { parameters } => {
                if let Some(params) = &parameters {
                    let client: Vec<String> = params
                        .iter()
                        .take(8)
                        .map(|(k, v)| {
                            let value = v.0.as_ref().map_or("NIL".into(), |v| {
                                String::from_utf8_lossy(v.as_bytes()).into_owned()
                            });
                            format!("{}={}", String::from_utf8_lossy(k.as_bytes()), value)
                        })
                        .collect();
                    tracing::info!(peer = %self.peer, client = %client.join(" "), "IMAP client ID");
                }
                let field = |k: &'static str, v: &'static str| {
                    (
                        IString::from_bytes(k.as_bytes()),
                        NString(Some(IString::from_bytes(v.as_bytes()))),
                    )
                };
                let data = Data::Id(Some(vec![
                    field("name", "cas-rs"),
                    field("version", env!("CARGO_PKG_VERSION")),
                    field("vendor", "cas-rs"),
                ]));
                let _ = session.send(id, data);
                self.finish(session, id, Status::Ok, None, "");
            }
            CommandBody::Namespace => {
                let personal = NamespaceDescription {
                    prefix: IString::from_bytes(&b""[..]),
                    delimiter: Delimiter::new(DELIMITER).ok(),
                    extensions: Vec::new(),
                };
                let _ = session.send(
                    id,
                    Data::Namespace {
                        personal: vec![personal],
                        other: Vec::new(),
                        shared: Vec::new(),
                    },
                );
                self.finish(session, id, Status::Ok, None, "");
            }
            CommandBody::Select {
                mailbox,
                parameters,
            }
            | CommandBody::Examine {
                mailbox,
                parameters,
            } => {
                // CONDSTORE / QRESYNC parameters are the session's (it enables them and
                // answers QRESYNC from the snapshot); the store adds which UIDs went after
                // the client's mod-sequence, so VANISHED (EARLIER) names only those.
                let qresync_modseq = parameters.iter().find_map(|p| match p {
                    SelectParameter::QResync(q) => Some(q.mod_seq.get()),
                    _ => None,
                });
                let Some(folder) = name_of(&mailbox) else {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::NonExistent),
                        "No such mailbox",
                    );
                    return;
                };
                let user = self.user.clone().unwrap_or_default();
                let changes = self.ctx.store.notifier().subscribe(&user, &folder);
                let claim_recent = !session.is_imap4rev2_enabled() && !examine;
                let format = self.selection_format();
                self.selected = None;
                self.run(move |store| MailboxJob::Selected {
                    id,
                    folder: folder.clone(),
                    read_only: examine,
                    format,
                    changes,
                    result: store.select_qresync(&folder, claim_recent, qresync_modseq),
                });
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => {
                let Some(folder) = name_of(&mailbox) else {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::Cannot),
                        "Invalid mailbox name",
                    );
                    return;
                };
                if !special_use.is_empty() {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::UseAttr),
                        "SPECIAL-USE follows the folder name here",
                    );
                    return;
                }
                self.run(move |store| MailboxJob::Done {
                    id,
                    result: store.create(&folder),
                });
            }
            CommandBody::Delete { mailbox } => {
                let Some(folder) = name_of(&mailbox) else {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::NonExistent),
                        "No such mailbox",
                    );
                    return;
                };
                self.run(move |store| MailboxJob::Done {
                    id,
                    result: store.delete(&folder),
                });
            }
            CommandBody::Rename { from, to } => {
                let (Some(from), Some(to)) = (name_of(&from), name_of(&to)) else {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::Cannot),
                        "Invalid mailbox name",
                    );
                    return;
                };
                self.run(move |store| MailboxJob::Done {
                    id,
                    result: store.rename(&from, &to),
                });
            }
            CommandBody::Subscribe { mailbox } | CommandBody::Unsubscribe { mailbox } => {
                let Some(folder) = name_of(&mailbox) else {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::Cannot),
                        "Invalid mailbox name",
                    );
                    return;
                };
                self.run(move |store| MailboxJob::Done {
                    id,
                    result: if subscribe {
                        store.subscribe(&folder)
                    } else {
                        store.unsubscribe(&folder)
                    },
                });
            }
            CommandBody::List {
                selection,
                reference,
                patterns,
                return_options,
            } => {
                let reference = folder_name(&reference, utf8).unwrap_or_default();
                let patterns: Vec<String> = patterns
                    .iter()
                    .map(|p| {
                        if utf8 {
                            String::from_utf8_lossy(p.as_bytes()).into_owned()
                        } else {
                            cas_imap_proto::mutf7::decode(p.as_bytes()).map_or_else(
                                |_| String::from_utf8_lossy(p.as_bytes()).into_owned(),
                                |s| s.into_owned(),
                            )
                        }
                    })
                    .collect();
                if patterns.iter().all(String::is_empty) && selection.is_empty() {
                    // `LIST "" ""`: the hierarchy delimiter and root (RFC 9051 §6.3.9).
                    let data = Data::List(MailboxList {
                        attributes: vec![MailboxAttribute::NoSelect],
                        delimiter: Delimiter::new(DELIMITER).ok(),
                        mailbox: Mailbox::from_name_utf8("").unwrap_or(Mailbox::Inbox),
                        extended: Vec::new(),
                    });
                    let _ = session.send(id, data);
                    self.finish(session, id, Status::Ok, None, "");
                    return;
                }
                self.run(move |store| {
                    let lines = store.list().and_then(|folders| {
                        list_lines(
                            &store,
                            folders,
                            &reference,
                            &patterns,
                            &selection,
                            &return_options,
                            false,
                        )
                    });
                    MailboxJob::List {
                        id,
                        lines,
                        lsub: false,
                    }
                });
            }
            CommandBody::Lsub { reference, pattern } => {
                let reference = folder_name(&reference, utf8).unwrap_or_default();
                let pattern = cas_imap_proto::mutf7::decode(pattern.as_bytes()).map_or_else(
                    |_| String::from_utf8_lossy(pattern.as_bytes()).into_owned(),
                    |s| s.into_owned(),
                );
                self.run(move |store| {
                    let lines = store.list().and_then(|folders| {
                        list_lines(&store, folders, &reference, &[pattern], &[], &[], true)
                    });
                    MailboxJob::List {
                        id,
                        lines,
                        lsub: true,
                    }
                });
            }
            CommandBody::Status { mailbox, items } => {
                let Some(folder) = name_of(&mailbox) else {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::NonExistent),
                        "No such mailbox",
                    );
                    return;
                };
                self.run(move |store| MailboxJob::Status {
                    id,
                    mailbox: mailbox.into_owned(),
                    items,
                    result: store.status(&folder),
                });
            }
            CommandBody::Close | CommandBody::Unselect | CommandBody::Expunge => {
                let Some(selected) = self.selected.as_ref() else {
                    self.finish(session, id, Status::Ok, None, "");
                    return;
                };
                let expunge = !matches!(body, CommandBody::Unselect);
                if !expunge || selected.read_only {
                    if matches!(body, CommandBody::Expunge) {
                        self.finish(
                            session,
                            id,
                            Status::No,
                            Some(ResponseCode::Cannot),
                            "Mailbox is read-only",
                        );
                    } else {
                        self.finish(session, id, Status::Ok, None, "");
                    }
                    return;
                }
                let folder = selected.folder.clone();
                self.run(move |store| MailboxJob::Expunged {
                    id,
                    result: store.expunge(&folder, None),
                });
            }
            CommandBody::UidExpunge { sequence_set } => {
                let uids: Vec<u32> = session
                    .resolve(&sequence_set, true)
                    .iter()
                    .map(|u| u.get())
                    .collect();
                let Some(selected) = self.selected.as_ref() else {
                    self.finish(session, id, Status::Ok, None, "");
                    return;
                };
                if selected.read_only {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::Cannot),
                        "Mailbox is read-only",
                    );
                    return;
                }
                let folder = selected.folder.clone();
                self.run(move |store| MailboxJob::Expunged {
                    id,
                    result: store.expunge(&folder, Some(&uids)),
                });
            }
            CommandBody::Search {
                uid,
                return_options,
                charset,
                criteria,
            } => {
                if let Some(charset) = &charset
                    && !charset.as_bytes().eq_ignore_ascii_case(b"UTF-8")
                    && !charset.as_bytes().eq_ignore_ascii_case(b"US-ASCII")
                {
                    let supported: Vec<Charset<'static>> = ["UTF-8", "US-ASCII"]
                        .into_iter()
                        .filter_map(|c| cas_imap_proto::types::Atom::new(c).ok().map(Charset::Atom))
                        .collect();
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::BadCharset(supported)),
                        "Unsupported charset",
                    );
                    return;
                }
                let Some(selected) = self.selected.as_ref() else {
                    self.finish(session, id, Status::No, None, "No mailbox selected");
                    return;
                };
                let folder = selected.folder.clone();
                let recent = selected.recent.clone();
                let format = selected.format;
                let uids: Vec<u32> = session
                    .selected()
                    .map(|v| v.uids().map(|u| u.get()).collect())
                    .unwrap_or_default();
                let saved: Option<Vec<u32>> = {
                    let all =
                        session.resolve(&cas_imap_proto::types::SequenceSetArg::SavedResult, true);
                    Some(all.iter().map(|u| u.get()).collect())
                };
                let with_modseq = uses_modseq(&criteria);
                let key = if criteria.len() == 1 {
                    criteria.into_iter().next().unwrap_or(SearchKey::All)
                } else {
                    SearchKey::And(criteria)
                };
                self.run(move |store| {
                    let context = SearchContext {
                        uids: &uids,
                        recent: &recent,
                        saved: saved.as_deref(),
                        now: now_unix(),
                        format,
                    };
                    MailboxJob::Search {
                        id,
                        tag,
                        uid,
                        return_options,
                        with_modseq,
                        result: store.search(&folder, &key, &context),
                    }
                });
            }
            CommandBody::Fetch {
                uid,
                sequence_set,
                attributes,
                modifiers,
            } => {
                let Some(selected) = self.selected.as_ref() else {
                    self.finish(session, id, Status::No, None, "No mailbox selected");
                    return;
                };
                let uids: Vec<u32> = session
                    .resolve(&sequence_set, uid)
                    .iter()
                    .map(|u| u.get())
                    .collect();
                let folder = selected.folder.clone();
                let recent = selected.recent.clone();
                let set_seen = !selected.read_only;
                let format = selected.format;
                let changed_since = modifiers.iter().find_map(|m| match m {
                    FetchModifier::ChangedSince(m) => Some(m.get()),
                    _ => None,
                });
                let want_vanished = uid && modifiers.contains(&FetchModifier::Vanished);
                let requested = match &sequence_set {
                    cas_imap_proto::types::SequenceSetArg::Set(set) => Some(set.clone()),
                    _ => None,
                };
                // Later batches are started by `continue_fetch` as the output drains.
                self.fetch_run = Some(FetchRun {
                    id,
                    folder,
                    uids: uids.into(),
                    done: 0,
                    items: attributes.expand().into_owned().into(),
                    set_seen,
                    recent,
                    changed_since,
                    format,
                });
                let vanished_since = match (want_vanished, changed_since, requested) {
                    (true, Some(since), Some(set)) => Some((since, set)),
                    _ => None,
                };
                self.start_fetch_batch(vanished_since);
            }
            CommandBody::Store {
                uid,
                sequence_set,
                unchanged_since,
                kind,
                silent: _,
                flags,
            } => {
                let Some(selected) = self.selected.as_ref() else {
                    self.finish(session, id, Status::No, None, "No mailbox selected");
                    return;
                };
                if selected.read_only {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::Cannot),
                        "Mailbox is read-only",
                    );
                    return;
                }
                let flags = match MessageFlags::from_imap(&flags) {
                    Ok(f) => f,
                    Err(e) => {
                        self.fail(session, id, &e);
                        return;
                    }
                };
                let operation = match kind {
                    StoreKind::Replace => FlagOperation::Replace,
                    StoreKind::Add => FlagOperation::Add,
                    StoreKind::Remove => FlagOperation::Remove,
                };
                let uids: Vec<u32> = session
                    .resolve(&sequence_set, uid)
                    .iter()
                    .map(|u| u.get())
                    .collect();
                let folder = selected.folder.clone();
                self.run(move |store| MailboxJob::Stored {
                    id,
                    result: store.store_flags(&folder, &uids, operation, &flags, unchanged_since),
                });
            }
            CommandBody::Copy {
                uid,
                sequence_set,
                mailbox,
            }
            | CommandBody::Move {
                uid,
                sequence_set,
                mailbox,
            } => {
                let Some(selected) = self.selected.as_ref() else {
                    self.finish(session, id, Status::No, None, "No mailbox selected");
                    return;
                };
                if moved && selected.read_only {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::Cannot),
                        "Mailbox is read-only",
                    );
                    return;
                }
                let Some(target) = name_of(&mailbox) else {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::TryCreate),
                        "No such mailbox",
                    );
                    return;
                };
                let uids: Vec<u32> = session
                    .resolve(&sequence_set, uid)
                    .iter()
                    .map(|u| u.get())
                    .collect();
                let folder = selected.folder.clone();
                let sync = self.sync_point(&target);
                self.run(move |store| {
                    let result = if moved {
                        store.move_messages(&folder, &uids, &target)
                    } else {
                        store.copy(&folder, &uids, &target)
                    };
                    let sync = sync
                        .filter(|_| result.is_ok())
                        .map(|(f, since)| store.changes_since(&f, since));
                    MailboxJob::Copied {
                        id,
                        moved,
                        result,
                        sync,
                    }
                });
            }
            other => {
                tracing::debug!(peer = %self.peer, command = other.name(), "IMAP command not implemented");
                self.finish(session, id, Status::Bad, None, "Command not supported");
            }
        }
    }

    /// Handles `AppendReceived`: all messages or none.
    pub(super) fn on_append(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        mailbox: Mailbox<'static>,
        messages: Vec<AppendPayload>,
    ) {
        let Some(folder) = folder_name(&mailbox, session.is_utf8_enabled()) else {
            self.finish(
                session,
                id,
                Status::No,
                Some(ResponseCode::TryCreate),
                "No such mailbox",
            );
            return;
        };
        let mut flags = Vec::with_capacity(messages.len());
        for m in &messages {
            match MessageFlags::from_imap(&m.flags) {
                Ok(f) => flags.push(f),
                Err(e) => {
                    self.fail(session, id, &e);
                    return;
                }
            }
        }
        let sync = self.sync_point(&folder);
        self.run(move |store| {
            let requests: Vec<AppendRequest<'_>> = messages
                .iter()
                .zip(flags)
                .map(|(m, flags)| AppendRequest {
                    data: &m.data,
                    flags,
                    internal_date: m.date_time.map(crate::imap_store::dates::unix_of),
                })
                .collect();
            let result = store.append(&folder, &requests);
            let sync = sync
                .filter(|_| result.is_ok())
                .map(|(f, since)| store.changes_since(&f, since));
            MailboxJob::Appended { id, result, sync }
        });
    }

    /// Starts the next batch of a FETCH being served in batches, once the session has sent
    /// most of the previous one (called after every drain, see `ImapApp::poll_work`).
    pub(super) fn continue_fetch(&mut self, session: &ServerSession) {
        if self.fetch_run.is_some()
            && !self.is_running()
            && session.queued_output() < FETCH_RESUME_BELOW
        {
            self.start_fetch_batch(None);
        }
    }

    /// Reads the next batch of the FETCH under way. The first batch also gathers the
    /// `VANISHED (EARLIER)` of `UID FETCH ... (CHANGEDSINCE n VANISHED)`: `(n, requested
    /// UIDs)`.
    fn start_fetch_batch(&mut self, vanished_since: Option<(u64, SequenceSet)>) {
        let Some(run) = self.fetch_run.as_ref() else {
            return;
        };
        let (id, folder, uids, done, items) = (
            run.id,
            run.folder.clone(),
            run.uids.clone(),
            run.done,
            run.items.clone(),
        );
        let (set_seen, recent, changed_since, format) = (
            run.set_seen,
            run.recent.clone(),
            run.changed_since,
            run.format,
        );
        self.run(move |store| {
            let options = FetchOptions {
                set_seen,
                recent: &recent,
                changed_since,
                format,
            };
            let vanished = match vanished_since {
                Some((since, set)) => store
                    .changes_since(&folder, since)
                    .map(|c| {
                        let largest = c.uidnext.saturating_sub(1);
                        c.vanished
                            .uids()
                            .filter(|&u| set.contains(u, largest))
                            .collect()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            MailboxJob::Fetch {
                id,
                vanished,
                result: store.fetch_batch(
                    &folder,
                    uids.get(done..).unwrap_or_default(),
                    &items,
                    &options,
                    FETCH_BATCH_BYTES,
                ),
            }
        });
    }

    /// Runs the change scan put off while a command was under way.
    pub(super) fn resume_deferred_scan(&mut self) {
        if self.scan_deferred && !self.is_running() && self.fetch_run.is_none() {
            self.scan_deferred = false;
            self.start_scan();
        }
    }

    /// Feeds a finished mailbox job back to the session.
    pub(super) fn complete_mailbox(
        &mut self,
        now: Instant,
        session: &mut ServerSession,
        job: MailboxJob,
    ) {
        let utf8 = session.is_utf8_enabled();
        match job {
            MailboxJob::Notified => self.start_scan(),
            MailboxJob::Changes { folder, result } => {
                if self.take_rescan() {
                    self.start_scan();
                }
                if self.is_running() || self.fetch_run.is_some() {
                    // A command of this session may have made these changes (FETCH sets
                    // \Seen, STORE flags) and not yet recorded their modseqs: applied now,
                    // they would come back to it as others' changes. Look again after it.
                    self.scan_deferred = true;
                    return;
                }
                let Some(selected) = self.selected.as_mut().filter(|s| s.folder == folder) else {
                    return;
                };
                match result {
                    Ok(changes) => selected.apply_changes(session, &changes),
                    Err(StoreError::NoSuchFolder) => {
                        // Deleted or renamed by another session: nothing left to show.
                        session.close(now, "Selected mailbox was deleted");
                    }
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, error = %e, "IMAP change scan failed")
                    }
                }
            }
            MailboxJob::Selected {
                id,
                folder,
                read_only,
                format,
                changes,
                result,
            } => match result {
                Ok(snapshot) => {
                    let Some(mailbox) = selected_mailbox(&snapshot, read_only) else {
                        self.finish(
                            session,
                            id,
                            Status::No,
                            Some(ResponseCode::ServerBug),
                            "Mailbox state is inconsistent",
                        );
                        return;
                    };
                    let modseqs = snapshot
                        .messages
                        .iter()
                        .map(|m| (m.uid, m.modseq))
                        .collect();
                    self.selected = Some(Selected {
                        folder,
                        read_only,
                        changes: Some(changes),
                        known_modseq: snapshot.highest_modseq,
                        modseqs,
                        max_uid: snapshot.messages.last().map_or(0, |m| m.uid),
                        recent: snapshot.recent.clone(),
                        format,
                    });
                    if let Err(e) = session.select(id, mailbox) {
                        self.selected = None;
                        tracing::debug!(peer = %self.peer, error = %e, "SELECT answer refused");
                    }
                }
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::Done { id, result } => match result {
                Ok(()) => self.finish(session, id, Status::Ok, None, ""),
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::List { id, lines, lsub } => match lines {
                Ok(lines) => {
                    for line in lines {
                        let Some(mailbox) = wire_mailbox(&line.name, utf8) else {
                            continue;
                        };
                        let list = MailboxList {
                            attributes: line.attributes,
                            delimiter: Delimiter::new(DELIMITER).ok(),
                            mailbox: mailbox.clone(),
                            extended: if line.child_info {
                                vec![cas_imap_proto::response::ListExtendedItem::ChildInfo(vec![
                                    IString::from_bytes(&b"SUBSCRIBED"[..]),
                                ])]
                            } else {
                                Vec::new()
                            },
                        };
                        let _ = session.send(
                            id,
                            if lsub {
                                Data::Lsub(list)
                            } else {
                                Data::List(list)
                            },
                        );
                        if let Some((items, status)) = line.status {
                            let items = status_values(&items, &status, self.append_limit());
                            let _ = session.send(id, Data::Status { mailbox, items });
                        }
                    }
                    self.finish(session, id, Status::Ok, None, "");
                }
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::Status {
                id,
                mailbox,
                items,
                result,
            } => match result {
                Ok(status) => {
                    let items = status_values(&items, &status, self.append_limit());
                    let _ = session.send(id, Data::Status { mailbox, items });
                    self.finish(session, id, Status::Ok, None, "");
                }
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::Expunged { id, result } => match result {
                Ok(expunged) => {
                    if let Some(selected) = self.selected.as_mut() {
                        for uid in &expunged.uids {
                            selected.modseqs.remove(uid);
                        }
                    }
                    let uids: Vec<NonZeroU32> = expunged
                        .uids
                        .iter()
                        .filter_map(|&u| NonZeroU32::new(u))
                        .collect();
                    let _ = session.expunged(id, uids);
                    let code = if session.is_condstore_enabled() {
                        ModSeq::new(expunged.highest_modseq)
                            .ok()
                            .map(ResponseCode::HighestModSeq)
                    } else {
                        None
                    };
                    self.finish(session, id, Status::Ok, code, "");
                }
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::Search {
                id,
                tag,
                uid,
                return_options,
                with_modseq,
                result,
            } => match result {
                Ok((uids, highest)) => self.answer_search(
                    session,
                    id,
                    tag,
                    uid,
                    return_options,
                    with_modseq,
                    uids,
                    highest,
                ),
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::Fetch {
                id,
                vanished,
                result,
            } => match result {
                Ok((messages, covered)) => {
                    if let Some(set) = uid_set(&vanished) {
                        let _ = session.send(
                            id,
                            Data::Vanished {
                                earlier: true,
                                uids: set,
                            },
                        );
                    }
                    for m in messages {
                        if m.seen_set
                            && let Some(selected) = self.selected.as_mut()
                            && let Some(known) = selected.modseqs.get_mut(&m.uid)
                        {
                            *known = (*known).max(m.modseq);
                        }
                        let Some(uid) = NonZeroU32::new(m.uid) else {
                            continue;
                        };
                        let mut items: Vec<FetchItem<'static>> = m.items;
                        if session.is_condstore_enabled()
                            && !items.iter().any(|i| matches!(i, FetchItem::ModSeq(_)))
                            && let Ok(modseq) = ModSeq::new(m.modseq)
                        {
                            items.push(FetchItem::ModSeq(modseq));
                        }
                        let _ = session.send_fetch(id, uid, items);
                    }
                    let more = self.fetch_run.as_mut().is_some_and(|run| {
                        run.done += covered;
                        run.done < run.uids.len()
                    });
                    if !more {
                        self.fetch_run = None;
                        self.finish(session, id, Status::Ok, None, "");
                    }
                }
                Err(e) => {
                    self.fetch_run = None;
                    self.fail(session, id, &e);
                }
            },
            MailboxJob::Stored { id, result } => match result {
                Ok(outcome) => {
                    for meta in outcome.changed.iter().chain(&outcome.unchanged) {
                        if let Some(selected) = self.selected.as_mut()
                            && let Some(known) = selected.modseqs.get_mut(&meta.uid)
                        {
                            *known = (*known).max(meta.modseq);
                        }
                        let Some(uid) = NonZeroU32::new(meta.uid) else {
                            continue;
                        };
                        let _ = session.stored(
                            id,
                            MessageInfo::new(uid, meta.flags.to_flags(), meta.modseq),
                        );
                    }
                    let code = uid_set(&outcome.modified).map(ResponseCode::Modified);
                    self.finish(session, id, Status::Ok, code, "");
                }
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::Copied {
                id,
                moved,
                result,
                sync,
            } => match result {
                Ok(copy) => {
                    self.apply_sync(session, sync);
                    let code = copy_uid_code(&copy);
                    if moved {
                        if let Some(code) = code {
                            let _ =
                                session.send_untagged_status(id, Status::Ok, Some(code), "Moved");
                        }
                        let sources: Vec<NonZeroU32> = copy
                            .pairs
                            .iter()
                            .filter_map(|&(s, _)| NonZeroU32::new(s))
                            .collect();
                        if let Some(selected) = self.selected.as_mut() {
                            for s in &sources {
                                selected.modseqs.remove(&s.get());
                            }
                        }
                        let _ = session.expunged(id, sources);
                        self.finish(session, id, Status::Ok, None, "");
                    } else {
                        self.finish(session, id, Status::Ok, code, "");
                    }
                }
                Err(StoreError::NoSuchFolder) => {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::TryCreate),
                        "No such mailbox",
                    );
                }
                Err(e) => self.fail(session, id, &e),
            },
            MailboxJob::Appended { id, result, sync } => match result {
                Ok(appended) => {
                    self.apply_sync(session, sync);
                    let code = NonZeroU32::new(appended.uidvalidity)
                        .zip(uid_set(&appended.uids))
                        .map(|(uid_validity, uids)| ResponseCode::AppendUid { uid_validity, uids });
                    self.finish(session, id, Status::Ok, code, "");
                }
                Err(StoreError::NoSuchFolder) => {
                    self.finish(
                        session,
                        id,
                        Status::No,
                        Some(ResponseCode::TryCreate),
                        "No such mailbox",
                    );
                }
                Err(e) => self.fail(session, id, &e),
            },
        }
    }

    /// When `target` is the selected folder: the folder and the modseq the session knows,
    /// so that a command adding messages to it can report them (EXISTS) before its OK, and
    /// the client's next SEARCH or FETCH sees them (RFC 9051 §6.3.12).
    fn sync_point(&self, target: &str) -> Option<(String, u64)> {
        let selected = self.selected.as_ref()?;
        let canonical = |n: &str| {
            crate::imap_store::FolderName::parse(n)
                .map(|f| f.to_imap())
                .ok()
        };
        (canonical(target)? == canonical(&selected.folder)?)
            .then(|| (selected.folder.clone(), selected.known_modseq))
    }

    fn apply_sync(
        &mut self,
        session: &mut ServerSession,
        sync: Option<Result<Changes, StoreError>>,
    ) {
        if let (Some(Ok(changes)), Some(selected)) = (sync, self.selected.as_mut()) {
            selected.apply_changes(session, &changes);
        }
    }

    /// Scans the selected mailbox for changes since what the session knows.
    fn start_scan(&mut self) {
        let (Some(selected), Some(store)) = (self.selected.as_ref(), self.store()) else {
            return;
        };
        let folder = selected.folder.clone();
        let since = selected.known_modseq;
        self.spawn_scan(move || {
            Job::Mailbox(MailboxJob::Changes {
                result: store.changes_since(&folder, since),
                folder,
            })
        });
    }

    fn append_limit(&self) -> u64 {
        self.ctx.store.config().limits.max_message_size
    }

    #[allow(clippy::too_many_arguments)]
    fn answer_search(
        &mut self,
        session: &mut ServerSession,
        id: CommandId,
        tag: Tag<'static>,
        uid: bool,
        return_options: Option<Vec<SearchReturnOption>>,
        with_modseq: bool,
        uids: Vec<u32>,
        highest: u64,
    ) {
        // Message numbers for SEARCH, UIDs for UID SEARCH.
        let numbers: Vec<NonZeroU32> = if uid {
            uids.iter().filter_map(|&u| NonZeroU32::new(u)).collect()
        } else {
            let view = session.selected();
            uids.iter()
                .filter_map(|&u| view.and_then(|v| v.msn(u)))
                .collect()
        };
        let mod_seq = if with_modseq {
            ModSeq::new(highest).ok()
        } else {
            None
        };
        let Some(options) = return_options else {
            let _ = session.send(id, Data::Search { numbers, mod_seq });
            self.finish(session, id, Status::Ok, None, "");
            return;
        };
        let options = if options.is_empty() {
            vec![SearchReturnOption::All]
        } else {
            options
        };
        let has = |o: SearchReturnOption| options.contains(&o);
        if has(SearchReturnOption::Save) {
            // RFC 5182 §2.4: with MIN or MAX (and not ALL/COUNT) only those are saved.
            let saved: Vec<NonZeroU32> = if (has(SearchReturnOption::Min)
                || has(SearchReturnOption::Max))
                && !has(SearchReturnOption::All)
                && !has(SearchReturnOption::Count)
            {
                let mut s = Vec::new();
                if has(SearchReturnOption::Min) {
                    s.extend(uids.first().and_then(|&u| NonZeroU32::new(u)));
                }
                if has(SearchReturnOption::Max) {
                    s.extend(uids.last().and_then(|&u| NonZeroU32::new(u)));
                }
                s.dedup();
                s
            } else {
                uids.iter().filter_map(|&u| NonZeroU32::new(u)).collect()
            };
            session.save_search_result(saved);
        }
        let only_save = options.iter().all(|o| *o == SearchReturnOption::Save);
        if !only_save {
            let mut items = Vec::new();
            if has(SearchReturnOption::Min)
                && let Some(&min) = numbers.first()
            {
                items.push(ESearchItem::Min(min));
            }
            if has(SearchReturnOption::Max)
                && let Some(&max) = numbers.last()
            {
                items.push(ESearchItem::Max(max));
            }
            if has(SearchReturnOption::All)
                && let Some(set) = uid_set(&numbers.iter().map(|n| n.get()).collect::<Vec<_>>())
            {
                items.push(ESearchItem::All(set));
            }
            if has(SearchReturnOption::Count) {
                items.push(ESearchItem::Count(
                    u32::try_from(numbers.len()).unwrap_or(u32::MAX),
                ));
            }
            if let Some(m) = mod_seq
                && !numbers.is_empty()
            {
                items.push(ESearchItem::ModSeq(m));
            }
            let _ = session.send(
                id,
                Data::ESearch(ESearch {
                    tag: Some(tag),
                    uid,
                    items,
                }),
            );
        }
        self.finish(session, id, Status::Ok, None, "");
    }
}

/// The session's SELECT snapshot from the store's.
fn selected_mailbox(snapshot: &Snapshot, read_only: bool) -> Option<SelectedMailbox> {
    let uid_validity = NonZeroU32::new(snapshot.uidvalidity)?;
    let uid_next = NonZeroU32::new(snapshot.uidnext.max(1))?;
    let messages: Vec<MessageInfo> = snapshot
        .messages
        .iter()
        .filter_map(|m| {
            Some(MessageInfo::new(
                NonZeroU32::new(m.uid)?,
                m.flags.to_flags(),
                m.modseq,
            ))
        })
        .collect();
    let highest = ModSeq::new(snapshot.highest_modseq.max(1)).ok();
    let mut mailbox = SelectedMailbox::new(uid_validity, uid_next, highest, messages);
    for keyword in &snapshot.keywords {
        let mut flags = MessageFlags::default();
        flags.add_keyword(keyword);
        for flag in flags.to_flags() {
            if !mailbox.flags.contains(&flag) {
                mailbox.permanent_flags.insert(
                    mailbox.permanent_flags.len().saturating_sub(1),
                    FlagPerm::Flag(flag.clone()),
                );
                mailbox.flags.push(flag);
            }
        }
    }
    let _: &[Flag<'static>] = &mailbox.flags;
    mailbox.read_only = read_only;
    mailbox.recent = u32::try_from(snapshot.recent.len()).unwrap_or(u32::MAX);
    // Exact only while the tombstones reach back that far; otherwise the session's default
    // (every missing known UID) is what the store would say too.
    mailbox.expunged_since_qresync = snapshot
        .vanished
        .as_ref()
        .filter(|v| v.complete)
        .map(|v| v.ranges.clone().into_boxed_slice());
    Some(mailbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns() {
        assert!(matches_pattern("INBOX", "*"));
        assert!(matches_pattern("INBOX", "inbox"));
        assert!(matches_pattern("Archive/2025", "*"));
        assert!(!matches_pattern("Archive/2025", "%"));
        assert!(matches_pattern("Archive/2025", "Archive/%"));
        assert!(matches_pattern("Archive", "%"));
        assert!(matches_pattern("Sent", "S%"));
        assert!(!matches_pattern("Sent", "D%"));
        assert!(matches_pattern("Archive/2025/Q1", "Archive/*"));
        assert!(!matches_pattern("Archive/2025/Q1", "Archive/%"));
    }

    #[test]
    fn copyuid_keeps_pairs_in_order() {
        let copy = CopyUid {
            uidvalidity: 7,
            pairs: vec![(3, 10), (4, 11), (5, 12), (9, 13), (10, 20)],
        };
        let code = copy_uid_code(&copy).unwrap();
        let text = String::from_utf8(cas_imap_proto::encode::to_bytes(&code)).unwrap();
        assert_eq!(text, "COPYUID 7 3:5,9,10 10:12,13,20");
        assert!(
            copy_uid_code(&CopyUid {
                uidvalidity: 7,
                pairs: Vec::new()
            })
            .is_none()
        );
    }

    #[test]
    fn uid_sets_compress_runs() {
        let set = uid_set(&[1, 2, 3, 7, 9, 10]).unwrap();
        assert_eq!(
            String::from_utf8(cas_imap_proto::encode::to_bytes(&set)).unwrap(),
            "1:3,7,9:10"
        );
        assert!(uid_set(&[]).is_none());
    }
}
