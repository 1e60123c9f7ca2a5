//! The selected-mailbox view: the client's picture of the selected mailbox (message sequence
//! numbers ↔ UIDs) and the rules for when it may change.
//!
//! The application speaks UIDs. The view keeps, in sequence-number order, the UIDs the
//! client has been told about, and queues what happened since (other sessions' appends, flag
//! changes and expunges, reported as [`Change`]s). [`MailboxView::take_updates`] turns the
//! queue into untagged responses when the session may send them:
//!
//! - `EXPUNGE` only when [`UpdateRules::expunge_allowed`]: never while answering FETCH,
//!   STORE or SEARCH, nor when no command is in progress (RFC 9051 §7.5.1, RFC 3501
//!   §7.4.1); UID FETCH/STORE/SEARCH may. A message expunged but not yet announced keeps its
//!   sequence number, so `EXISTS` never decreases without `EXPUNGE`.
//! - `VANISHED` instead of `EXPUNGE` once QRESYNC is enabled (RFC 7162 §3.2.10).
//! - Sequence numbers in `EXPUNGE` are sent in decreasing order, so each one is the number
//!   the client has for that message when it reads it.
//! - New messages become visible with `EXISTS` after the expunges are announced.
//!
//! Memory per message is a UID and a mod-sequence (16 bytes); flags live in the
//! application's store and are only held for changes not yet announced.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use crate::response::{Data, FetchItem};
use crate::types::{Flag, FlagFetch, FlagPerm, ModSeq, SeqOrUid, SeqRange, SequenceSet};

/// One message as the application reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// The message's UID.
    pub uid: NonZeroU32,
    /// Its flags (system flags and keywords; never `\Recent`).
    pub flags: Vec<Flag<'static>>,
    /// Its mod-sequence (RFC 7162); `0` when the mailbox keeps none.
    pub modseq: u64,
}

impl MessageInfo {
    /// A message with `uid`, `flags` and `modseq`.
    pub fn new(uid: NonZeroU32, flags: Vec<Flag<'static>>, modseq: u64) -> Self {
        Self { uid, flags, modseq }
    }
}

/// The application's snapshot of a mailbox, handed over in its SELECT/EXAMINE answer
/// ([`crate::server::ServerSession::select`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedMailbox {
    /// UIDVALIDITY.
    pub uid_validity: NonZeroU32,
    /// The next UID to be assigned.
    pub uid_next: NonZeroU32,
    /// HIGHESTMODSEQ; `None` for a mailbox without mod-sequences (`NOMODSEQ`, RFC 7162 §3.1.2.2).
    pub highest_modseq: Option<ModSeq>,
    /// The messages, in ascending UID order (the session sorts and de-duplicates otherwise).
    pub messages: Vec<MessageInfo>,
    /// Flags defined in the mailbox (the `FLAGS` response).
    pub flags: Vec<Flag<'static>>,
    /// Flags the client can change permanently (`PERMANENTFLAGS`); `\*` if it may create
    /// keywords. Sent as `PERMANENTFLAGS ()` when the mailbox is read-only.
    pub permanent_flags: Vec<FlagPerm<'static>>,
    /// The mailbox is read-only (always so for EXAMINE).
    pub read_only: bool,
    /// Messages with `\Recent` (RFC 3501 `RECENT`, sent only to IMAP4rev1 clients).
    pub recent: u32,
    /// For a QRESYNC SELECT, when the application keeps the mod-sequences of expunges: the
    /// UIDs expunged after the client's mod-sequence, as inclusive ascending ranges. The
    /// `VANISHED (EARLIER)` response then lists only those of the client's known UIDs.
    /// `None` (the default): every known UID missing from the mailbox is listed, which RFC
    /// 7162 §3.2.5.1 allows but costs the client work (interimap warns about each).
    pub expunged_since_qresync: Option<Box<[(u32, u32)]>>,
}

impl SelectedMailbox {
    /// A snapshot with the five system flags defined and permanent (plus `\*`), read-write,
    /// no recent messages.
    pub fn new(
        uid_validity: NonZeroU32,
        uid_next: NonZeroU32,
        highest_modseq: Option<ModSeq>,
        messages: Vec<MessageInfo>,
    ) -> Self {
        let flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        let mut permanent_flags: Vec<FlagPerm<'static>> =
            flags.iter().cloned().map(FlagPerm::Flag).collect();
        permanent_flags.push(FlagPerm::Asterisk);
        Self {
            uid_validity,
            uid_next,
            highest_modseq,
            messages,
            flags,
            permanent_flags,
            read_only: false,
            recent: 0,
            expunged_since_qresync: None,
        }
    }
}

/// A change to the selected mailbox made by someone else (another session, a delivery), as
/// the application reports it with [`crate::server::ServerSession::mailbox_changed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new message (UID above every UID the view knows; others are ignored).
    Appended(MessageInfo),
    /// A message's flags changed (the full new flag list).
    FlagsChanged(MessageInfo),
    /// Messages were expunged. Unknown UIDs are ignored.
    Expunged(Vec<NonZeroU32>),
}

/// When [`MailboxView::take_updates`] is called, and what the client has enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateRules {
    /// `EXPUNGE`/`VANISHED` may be sent now.
    pub expunge_allowed: bool,
    /// QRESYNC is enabled: `VANISHED` instead of `EXPUNGE`, and `UID` in every FETCH.
    pub qresync: bool,
    /// CONDSTORE is enabled: `MODSEQ` in every FETCH (RFC 7162 §3.1.4.1).
    pub condstore: bool,
}

/// A sequence number in a command is above the number of messages (the client must be
/// answered `BAD`, RFC 9051 §6.4.4 and Dovecot/Cyrus practice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("message sequence number {number} is above the {exists} messages of the mailbox")]
pub struct SequenceOutOfRange {
    /// The offending number.
    pub number: u32,
    /// Messages in the view.
    pub exists: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    uid: u32,
    /// Expunged, but the client has not been told yet.
    expunged: bool,
    modseq: u64,
}

/// The client's view of the selected mailbox; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxView {
    uid_validity: NonZeroU32,
    uid_next: u32,
    highest_modseq: u64,
    read_only: bool,
    /// Messages the client knows, in sequence-number order (ascending UIDs).
    entries: Vec<Entry>,
    /// Entries marked expunged, not yet announced.
    expunged: usize,
    /// Appended messages not yet announced, ascending UIDs, all above `entries`.
    new: Vec<Entry>,
    /// Flag changes not yet announced, by UID.
    flags: BTreeMap<u32, (Vec<Flag<'static>>, u64)>,
}

impl MailboxView {
    /// The view of a freshly selected mailbox: every message of `snapshot` is known to the
    /// client once the SELECT answer is out.
    pub fn new(snapshot: &SelectedMailbox) -> Self {
        let mut entries: Vec<Entry> = snapshot
            .messages
            .iter()
            .map(|m| Entry {
                uid: m.uid.get(),
                expunged: false,
                modseq: m.modseq,
            })
            .collect();
        entries.sort_by_key(|e| e.uid);
        entries.dedup_by_key(|e| e.uid);
        let max_uid = entries.last().map_or(0, |e| e.uid);
        let highest = entries.iter().map(|e| e.modseq).max().unwrap_or(0);
        Self {
            uid_validity: snapshot.uid_validity,
            uid_next: snapshot.uid_next.get().max(max_uid.saturating_add(1)),
            highest_modseq: snapshot
                .highest_modseq
                .map_or(highest, |m| m.get().max(highest)),
            read_only: snapshot.read_only,
            entries,
            expunged: 0,
            new: Vec::new(),
            flags: BTreeMap::new(),
        }
    }

    /// UIDVALIDITY.
    pub fn uid_validity(&self) -> NonZeroU32 {
        self.uid_validity
    }

    /// The next UID as far as the view knows (above every UID reported).
    pub fn uid_next(&self) -> u32 {
        self.uid_next
    }

    /// The highest mod-sequence reported (0 when none).
    pub fn highest_modseq(&self) -> u64 {
        self.highest_modseq
    }

    /// Selected read-only (EXAMINE, or a read-only mailbox).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The number of messages the client knows (its last `EXISTS`, less announced expunges).
    pub fn exists(&self) -> u32 {
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX)
    }

    /// The UID of sequence number `msn`.
    pub fn uid(&self, msn: u32) -> Option<NonZeroU32> {
        let index = usize::try_from(msn).ok()?.checked_sub(1)?;
        self.entries.get(index).and_then(|e| NonZeroU32::new(e.uid))
    }

    /// The sequence number of `uid`, if the client knows the message (expunged messages not
    /// yet announced included).
    pub fn msn(&self, uid: u32) -> Option<NonZeroU32> {
        let index = self.entries.binary_search_by_key(&uid, |e| e.uid).ok()?;
        NonZeroU32::new(u32::try_from(index).ok()?.checked_add(1)?)
    }

    /// Whether `uid` was expunged and the client has not been told yet: a FETCH of it may
    /// be answered from a cache or with `NO [EXPUNGEISSUED]` (RFC 9051 §7.5.1).
    pub fn is_expunged(&self, uid: u32) -> bool {
        self.entries
            .binary_search_by_key(&uid, |e| e.uid)
            .is_ok_and(|i| self.entries.get(i).is_some_and(|e| e.expunged))
    }

    /// The UIDs the client knows, in sequence-number order.
    pub fn uids(&self) -> impl Iterator<Item = NonZeroU32> + '_ {
        self.entries.iter().filter_map(|e| NonZeroU32::new(e.uid))
    }

    /// Whether changes wait to be announced.
    pub fn has_updates(&self) -> bool {
        self.expunged > 0 || !self.new.is_empty() || !self.flags.is_empty()
    }

    /// Resolves a command's sequence set to the UIDs it names, ascending and without
    /// duplicates. With `uid`, the set holds UIDs and `*` is the highest UID the client
    /// knows; UIDs the view does not hold are left out (RFC 9051 §6.4.9: not an error).
    /// Without `uid`, the set holds sequence numbers and `*` is the last one; a number above
    /// [`MailboxView::exists`] is an error. Costs O(ranges · log(ranges · n) + result); the
    /// result holds each message at most once, however the ranges overlap.
    pub fn resolve(
        &self,
        set: &SequenceSet,
        uid: bool,
    ) -> Result<Vec<NonZeroU32>, SequenceOutOfRange> {
        let mut out: Vec<NonZeroU32> = Vec::new();
        if !uid {
            self.check_sequence_set(set)?;
        }
        let largest = if uid {
            self.entries.last().map_or(0, |e| e.uid)
        } else {
            self.exists()
        };
        if largest == 0 {
            return Ok(out);
        }
        // Merged first, so that `1:*,1:*,...` costs no more than `1:*`: the result never
        // holds more than one entry per message, whatever the client sends.
        let mut bounds: Vec<(u32, u32)> = set.ranges().iter().map(|r| r.bounds(largest)).collect();
        bounds.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(bounds.len());
        for (lo, hi) in bounds {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        for (lo, hi) in merged {
            let slice = if uid {
                let start = self.entries.partition_point(|e| e.uid < lo);
                let end = self.entries.partition_point(|e| e.uid <= hi);
                self.entries.get(start..end)
            } else {
                let start = usize::try_from(lo.saturating_sub(1)).unwrap_or(usize::MAX);
                let end = usize::try_from(hi)
                    .unwrap_or(usize::MAX)
                    .min(self.entries.len());
                self.entries.get(start..end)
            };
            out.extend(
                slice
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| NonZeroU32::new(e.uid)),
            );
        }
        Ok(out)
    }

    /// Checks that every explicit sequence number of `set` is at most
    /// [`MailboxView::exists`] (`*` always is; in an empty mailbox it names nothing).
    pub fn check_sequence_set(&self, set: &SequenceSet) -> Result<(), SequenceOutOfRange> {
        let exists = self.exists();
        for range in set.ranges() {
            let values = match *range {
                SeqRange::Single(a) => [a, a],
                SeqRange::Range(a, b) => [a, b],
            };
            for value in values {
                if let SeqOrUid::Value(n) = value
                    && n.get() > exists
                {
                    return Err(SequenceOutOfRange {
                        number: n.get(),
                        exists,
                    });
                }
            }
        }
        Ok(())
    }

    /// Records a change; it is announced by a later [`MailboxView::take_updates`].
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Appended(message) => {
                let uid = message.uid.get();
                let known_max = self.new.last().or(self.entries.last()).map_or(0, |e| e.uid);
                if uid <= known_max {
                    return;
                }
                self.new.push(Entry {
                    uid,
                    expunged: false,
                    modseq: message.modseq,
                });
                self.uid_next = self.uid_next.max(uid.saturating_add(1));
                self.highest_modseq = self.highest_modseq.max(message.modseq);
            }
            Change::FlagsChanged(message) => {
                let uid = message.uid.get();
                self.highest_modseq = self.highest_modseq.max(message.modseq);
                if let Ok(i) = self.new.binary_search_by_key(&uid, |e| e.uid) {
                    // Not announced yet: the client fetches the flags of a new message.
                    if let Some(e) = self.new.get_mut(i) {
                        e.modseq = e.modseq.max(message.modseq);
                    }
                    return;
                }
                let Ok(i) = self.entries.binary_search_by_key(&uid, |e| e.uid) else {
                    return;
                };
                let Some(entry) = self.entries.get_mut(i) else {
                    return;
                };
                if entry.expunged {
                    return;
                }
                entry.modseq = entry.modseq.max(message.modseq);
                self.flags.insert(uid, (message.flags, message.modseq));
            }
            Change::Expunged(uids) => {
                for uid in uids {
                    let uid = uid.get();
                    if let Ok(i) = self.new.binary_search_by_key(&uid, |e| e.uid) {
                        // Never announced: the client never learns of it.
                        self.new.remove(i);
                        continue;
                    }
                    if let Ok(i) = self.entries.binary_search_by_key(&uid, |e| e.uid)
                        && let Some(entry) = self.entries.get_mut(i)
                        && !entry.expunged
                    {
                        entry.expunged = true;
                        self.expunged += 1;
                        self.flags.remove(&uid);
                    }
                }
            }
        }
    }

    /// Records the result of the client's own STORE on `uid` and returns the FETCH response
    /// that reports it (`None` if the client does not know the message). Any queued change
    /// of the same message is superseded.
    pub fn stored(
        &mut self,
        message: MessageInfo,
        include_uid: bool,
        rules: UpdateRules,
    ) -> Option<Data<'static>> {
        let uid = message.uid.get();
        self.highest_modseq = self.highest_modseq.max(message.modseq);
        let i = self.entries.binary_search_by_key(&uid, |e| e.uid).ok()?;
        let entry = self.entries.get_mut(i)?;
        if entry.expunged {
            return None;
        }
        entry.modseq = entry.modseq.max(message.modseq);
        self.flags.remove(&uid);
        let seq = NonZeroU32::new(u32::try_from(i).ok()?.checked_add(1)?)?;
        Some(fetch_flags(
            seq,
            message.uid,
            message.flags,
            message.modseq,
            include_uid || rules.qresync,
            rules.condstore,
        ))
    }

    /// Announces what [`MailboxView::apply`] queued, as far as `rules` allow, in the order
    /// expunges, flag changes, new messages (`EXISTS`).
    pub fn take_updates(&mut self, rules: UpdateRules) -> Vec<Data<'static>> {
        let mut out = Vec::new();
        if rules.expunge_allowed && self.expunged > 0 {
            self.announce_expunges(rules.qresync, &mut out);
        }
        if !self.flags.is_empty() {
            let flags = std::mem::take(&mut self.flags);
            for (uid, (flags, modseq)) in flags {
                let Some(seq) = self.msn(uid) else { continue };
                let Some(uid) = NonZeroU32::new(uid) else {
                    continue;
                };
                out.push(fetch_flags(
                    seq,
                    uid,
                    flags,
                    modseq,
                    rules.qresync,
                    rules.condstore,
                ));
            }
        }
        if !self.new.is_empty() {
            self.entries.append(&mut self.new);
            out.push(Data::Exists(self.exists()));
        }
        out
    }

    fn announce_expunges(&mut self, qresync: bool, out: &mut Vec<Data<'static>>) {
        if qresync {
            let gone: Vec<u32> = self
                .entries
                .iter()
                .filter(|e| e.expunged)
                .map(|e| e.uid)
                .collect();
            if let Some(uids) = uid_set(&gone) {
                out.push(Data::Vanished {
                    earlier: false,
                    uids,
                });
            }
        } else {
            for (i, entry) in self.entries.iter().enumerate().rev() {
                if entry.expunged
                    && let Some(seq) = u32::try_from(i)
                        .ok()
                        .and_then(|i| i.checked_add(1))
                        .and_then(NonZeroU32::new)
                {
                    out.push(Data::Expunge(seq));
                }
            }
        }
        self.entries.retain(|e| !e.expunged);
        self.expunged = 0;
    }
}

/// `* seq FETCH (FLAGS (...) [UID n] [MODSEQ (m)])`.
fn fetch_flags(
    seq: NonZeroU32,
    uid: NonZeroU32,
    flags: Vec<Flag<'static>>,
    modseq: u64,
    include_uid: bool,
    include_modseq: bool,
) -> Data<'static> {
    let mut items = vec![FetchItem::Flags(
        flags.into_iter().map(FlagFetch::Flag).collect(),
    )];
    if include_uid {
        items.push(FetchItem::Uid(uid));
    }
    if include_modseq && let Ok(m) = ModSeq::new(modseq) {
        items.push(FetchItem::ModSeq(m));
    }
    Data::Fetch { seq, items }
}

/// The compact sequence set of ascending UIDs (`1:3,7`), `None` when empty.
pub fn uid_set(uids: &[u32]) -> Option<SequenceSet> {
    let mut ranges = Vec::new();
    let mut iter = uids.iter().copied().filter_map(NonZeroU32::new);
    let mut start = iter.next()?;
    let mut end = start;
    let push = |ranges: &mut Vec<SeqRange>, a: NonZeroU32, b: NonZeroU32| {
        ranges.push(if a == b {
            SeqRange::Single(SeqOrUid::Value(a))
        } else {
            SeqRange::Range(SeqOrUid::Value(a), SeqOrUid::Value(b))
        });
    };
    for uid in iter {
        if end.get().checked_add(1) == Some(uid.get()) {
            end = uid;
        } else if uid > end {
            push(&mut ranges, start, end);
            start = uid;
            end = uid;
        }
    }
    push(&mut ranges, start, end);
    SequenceSet::new(ranges).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::to_bytes;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn view(uids: &[u32]) -> MailboxView {
        MailboxView::new(&SelectedMailbox::new(
            nz(1),
            nz(100),
            None,
            uids.iter()
                .map(|&u| MessageInfo::new(nz(u), vec![], 0))
                .collect(),
        ))
    }

    fn set(text: &str) -> SequenceSet {
        let (rest, set) = crate::parse::sequence_set(text.as_bytes()).unwrap();
        assert!(rest.is_empty());
        set
    }

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[]), None);
        assert_eq!(to_bytes(&uid_set(&[7]).unwrap()), b"7");
        assert_eq!(
            to_bytes(&uid_set(&[1, 2, 3, 7, 9, 10]).unwrap()),
            b"1:3,7,9:10"
        );
    }

    #[test]
    fn numbering_and_resolution() {
        let v = view(&[3, 5, 9]);
        assert_eq!(v.exists(), 3);
        assert_eq!(v.uid(2), Some(nz(5)));
        assert_eq!(v.uid(0), None);
        assert_eq!(v.uid(4), None);
        assert_eq!(v.msn(9), Some(nz(3)));
        assert_eq!(v.msn(4), None);
        assert_eq!(v.resolve(&set("2:*"), false).unwrap(), vec![nz(5), nz(9)]);
        assert_eq!(v.resolve(&set("4:*"), true).unwrap(), vec![nz(5), nz(9)]);
        // RFC 9051 §6.4.9: `n:*` with n above the highest UID still names the last message.
        assert_eq!(v.resolve(&set("50:*"), true).unwrap(), vec![nz(9)]);
        assert_eq!(
            v.resolve(&set("4"), false),
            Err(SequenceOutOfRange {
                number: 4,
                exists: 3
            })
        );
        let empty = view(&[]);
        assert_eq!(empty.resolve(&set("1:*"), true).unwrap(), vec![]);
        assert_eq!(empty.resolve(&set("*"), false).unwrap(), vec![]);
    }

    #[test]
    fn changes_to_unknown_messages_are_ignored() {
        let mut v = view(&[3, 5]);
        v.apply(Change::Appended(MessageInfo::new(nz(4), vec![], 0)));
        v.apply(Change::Expunged(vec![nz(77)]));
        v.apply(Change::FlagsChanged(MessageInfo::new(nz(78), vec![], 0)));
        assert!(!v.has_updates());
        // Appended then expunged before the client heard of it: never announced.
        v.apply(Change::Appended(MessageInfo::new(nz(6), vec![], 0)));
        v.apply(Change::Expunged(vec![nz(6)]));
        assert_eq!(v.take_updates(UpdateRules::default()), vec![]);
        assert_eq!(v.uid_next(), 100);
    }
}
