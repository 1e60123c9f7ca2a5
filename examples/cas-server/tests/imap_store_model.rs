//! proptest: the IMAP store's UID map against a model under random sequences of appends,
//! expunges (by this store and by "other programs"), deliveries into `new/` and reopenings
//! (a restart), checking that UIDs are ascending, stable, never reused, and that UIDNEXT and
//! HIGHESTMODSEQ only grow.

use std::fs;
use std::path::Path;

use cas_server::imap_store::{
    AppendRequest, FlagOperation, ImapStore, MessageFlags, StoreConfig, SystemFlags,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// APPEND (MULTIAPPEND of n messages).
    Append(usize),
    /// STORE +FLAGS \Deleted on the messages picked by the mask, then EXPUNGE.
    Expunge(u8),
    /// UID EXPUNGE restricted to a subset of the \Deleted ones.
    UidExpunge(u8),
    /// Another program delivers into new/.
    Deliver,
    /// Another program deletes a file from cur/.
    ExternalDelete(usize),
    /// A new store instance over the same directory (a restart).
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..=3).prop_map(Op::Append),
        2 => any::<u8>().prop_map(Op::Expunge),
        1 => any::<u8>().prop_map(Op::UidExpunge),
        2 => Just(Op::Deliver),
        1 => any::<usize>().prop_map(Op::ExternalDelete),
        1 => Just(Op::Reopen),
    ]
}

fn picked(uids: &[u32], mask: u8) -> Vec<u32> {
    uids.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << (i % 8)) != 0)
        .map(|(_, &u)| u)
        .collect()
}

fn run(ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut store = ImapStore::new(root, StoreConfig::default());
    // The model: live UIDs, the next UID, and every UID ever handed out.
    let mut live: Vec<u32> = Vec::new();
    // Flagged \Deleted but not expunged yet.
    let mut deleted: Vec<u32> = Vec::new();
    let mut next = 1u32;
    let mut last_modseq = 0u64;
    let mut delivered = 0;
    let uidvalidity = store
        .user("u")
        .unwrap()
        .select("INBOX", false)
        .unwrap()
        .uidvalidity;

    for op in ops {
        let user = store.user("u").unwrap();
        match op {
            Op::Append(n) => {
                let data: Vec<Vec<u8>> = (0..n)
                    .map(|i| format!("Subject: {i}\r\n\r\nx\r\n").into_bytes())
                    .collect();
                let reqs: Vec<AppendRequest<'_>> = data
                    .iter()
                    .map(|d| AppendRequest {
                        data: d,
                        flags: MessageFlags::default(),
                        internal_date: None,
                    })
                    .collect();
                let got = user.append("INBOX", &reqs).unwrap();
                let want: Vec<u32> = (next..next + n as u32).collect();
                assert_eq!(got.uids, want);
                assert_eq!(got.uidvalidity, uidvalidity);
                live.extend(&want);
                next += n as u32;
            }
            Op::Expunge(mask) | Op::UidExpunge(mask) => {
                let doomed = picked(&live, mask);
                user.store_flags(
                    "INBOX",
                    &doomed,
                    FlagOperation::Add,
                    &MessageFlags::system(SystemFlags::DELETED),
                    None,
                )
                .unwrap();
                let restrict: Option<Vec<u32>> = matches!(op, Op::UidExpunge(_))
                    .then(|| doomed.iter().copied().step_by(2).collect());
                let expunged = user.expunge("INBOX", restrict.as_deref()).unwrap();
                deleted.extend(&doomed);
                let mut want: Vec<u32> = live
                    .iter()
                    .copied()
                    .filter(|u| deleted.contains(u))
                    .filter(|u| restrict.as_ref().is_none_or(|r| r.contains(u)))
                    .collect();
                want.sort_unstable();
                assert_eq!(expunged.uids, want);
                live.retain(|u| !want.contains(u));
            }
            Op::Deliver => {
                delivered += 1;
                let path = root.join("u/new").join(format!("ext{delivered}.host"));
                fs::write(path, b"Subject: ext\n\nbody\n").unwrap();
                live.push(next);
                next += 1;
            }
            Op::ExternalDelete(i) => {
                // Find the file of a live message through a snapshot of the directory.
                let cur = root.join("u/cur");
                let files: Vec<_> = fs::read_dir(&cur)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                if !files.is_empty() && !live.is_empty() {
                    // Identify the victim's UID by rescanning after removal.
                    let victim = &files[i % files.len()];
                    fs::remove_file(victim).unwrap();
                    let now: Vec<u32> = uids(&store, root);
                    let gone: Vec<u32> =
                        live.iter().copied().filter(|u| !now.contains(u)).collect();
                    assert_eq!(gone.len(), 1, "one file removed, one UID gone");
                    live.retain(|u| !gone.contains(u));
                }
            }
            Op::Reopen => store = ImapStore::new(root, StoreConfig::default()),
        }
        let snap = store.user("u").unwrap().select("INBOX", false).unwrap();
        let got: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
        assert_eq!(got, live);
        assert_eq!(snap.uidnext, next);
        assert_eq!(snap.uidvalidity, uidvalidity);
        assert!(snap.highest_modseq >= last_modseq);
        assert!(
            snap.messages
                .iter()
                .all(|m| m.modseq <= snap.highest_modseq)
        );
        last_modseq = snap.highest_modseq;
    }
}

fn uids(store: &ImapStore, _root: &Path) -> Vec<u32> {
    store
        .user("u")
        .unwrap()
        .select("INBOX", false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn uid_map_matches_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        run(ops);
    }
}
