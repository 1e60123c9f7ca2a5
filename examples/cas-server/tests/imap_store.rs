//! The IMAP store against a temporary Maildir: UIDs, flags, modseq, APPEND/COPY/MOVE/EXPUNGE
//! atomicity, folders, notifications, FETCH and SEARCH through the public API.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cas_imap_proto::command::{FetchAttribute, SearchKey};
use cas_imap_proto::response::FetchItem;
use cas_server::imap_store::{
    AppendRequest, FaultPoint, FetchOptions, FlagOperation, ImapStore, MessageFlags, SearchContext,
    StoreConfig, StoreError, SystemFlags,
};

fn store(root: &Path) -> ImapStore {
    ImapStore::new(root, StoreConfig::default())
}

fn msg(subject: &str) -> Vec<u8> {
    format!("From: a@example.test\r\nSubject: {subject}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody of {subject}\r\n").into_bytes()
}

fn append(store: &ImapStore, folder: &str, subjects: &[&str]) -> Vec<u32> {
    let data: Vec<Vec<u8>> = subjects.iter().map(|s| msg(s)).collect();
    let reqs: Vec<AppendRequest<'_>> = data
        .iter()
        .map(|d| AppendRequest {
            data: d,
            flags: MessageFlags::default(),
            internal_date: None,
        })
        .collect();
    store
        .user("alice")
        .unwrap()
        .append(folder, &reqs)
        .unwrap()
        .uids
}

fn uids(store: &ImapStore, folder: &str) -> Vec<u32> {
    store
        .user("alice")
        .unwrap()
        .select(folder, false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid)
        .collect()
}

fn deliver(root: &Path, sub: &str, name: &str, data: &[u8]) {
    let dir = root.join("alice").join(sub);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), data).unwrap();
}

#[test]
fn uids_are_stable_across_reopen_and_never_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    deliver(tmp.path(), "new", "1.a.host", b"Subject: one\n\nx\n");
    deliver(tmp.path(), "cur", "2.b.host:2,S", b"Subject: two\n\ny\n");
    let first = s.user("alice").unwrap().select("INBOX", false).unwrap();
    assert_eq!(first.messages.len(), 2);
    assert_eq!(
        first.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [1, 2]
    );
    // new/ was moved to cur/.
    assert!(tmp.path().join("alice/cur/1.a.host:2,").exists());
    // The seen flag from the file name.
    assert!(
        first
            .messages
            .iter()
            .any(|m| m.flags.system.contains(SystemFlags::SEEN))
    );

    // A fresh store (a restart) sees the same UIDs and UIDVALIDITY.
    let again = store(tmp.path())
        .user("alice")
        .unwrap()
        .select("INBOX", false)
        .unwrap();
    assert_eq!(again.uidvalidity, first.uidvalidity);
    assert_eq!(again.messages, first.messages);

    // Expunge the highest UID; the next message must not reuse it.
    let user = s.user("alice").unwrap();
    user.store_flags(
        "INBOX",
        &[2],
        FlagOperation::Add,
        &MessageFlags::system(SystemFlags::DELETED),
        None,
    )
    .unwrap();
    assert_eq!(user.expunge("INBOX", None).unwrap().uids, [2]);
    let new = append(&s, "INBOX", &["three"]);
    assert_eq!(new, [3]);
    assert_eq!(uids(&store(tmp.path()), "INBOX"), [1, 3]);
}

#[test]
fn modseq_grows_and_changes_since_is_right() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    append(&s, "INBOX", &["a", "b", "c"]);
    let user = s.user("alice").unwrap();
    let snap = user.select("INBOX", false).unwrap();
    let m0 = snap.highest_modseq;
    let out = user
        .store_flags(
            "INBOX",
            &[2],
            FlagOperation::Add,
            &MessageFlags::system(SystemFlags::FLAGGED),
            None,
        )
        .unwrap();
    assert_eq!(out.changed.len(), 1);
    assert!(out.highest_modseq > m0);
    // A no-op store changes nothing.
    let noop = user
        .store_flags(
            "INBOX",
            &[2],
            FlagOperation::Add,
            &MessageFlags::system(SystemFlags::FLAGGED),
            None,
        )
        .unwrap();
    assert!(noop.changed.is_empty() && noop.unchanged.len() == 1);
    assert_eq!(noop.highest_modseq, out.highest_modseq);
    // UNCHANGEDSINCE below the message's modseq fails for it only.
    let cond = user
        .store_flags(
            "INBOX",
            &[1, 2],
            FlagOperation::Add,
            &MessageFlags::system(SystemFlags::SEEN),
            Some(m0),
        )
        .unwrap();
    assert_eq!(cond.modified, [2]);
    assert_eq!(cond.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [1]);

    user.store_flags(
        "INBOX",
        &[3],
        FlagOperation::Add,
        &MessageFlags::system(SystemFlags::DELETED),
        None,
    )
    .unwrap();
    let before_expunge = user.select("INBOX", false).unwrap().highest_modseq;
    let exp = user.expunge("INBOX", None).unwrap();
    assert_eq!(exp.uids, [3]);
    assert!(exp.highest_modseq > before_expunge);

    let changes = user.changes_since("INBOX", m0).unwrap();
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(changes.vanished.complete);
    assert_eq!(changes.vanished.uids().collect::<Vec<_>>(), [3]);
    let none = user.changes_since("INBOX", changes.highest_modseq).unwrap();
    assert!(none.changed.is_empty() && none.vanished.ranges.is_empty());
}

#[test]
fn trimmed_tombstones_report_every_missing_uid() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::default();
    config.limits.max_tombstones = 2;
    let s = ImapStore::new(tmp.path(), config);
    append(&s, "INBOX", &["1", "2", "3", "4", "5", "6"]);
    let user = s.user("alice").unwrap();
    let m0 = user.select("INBOX", false).unwrap().highest_modseq;
    user.store_flags(
        "INBOX",
        &[1, 2, 4, 6],
        FlagOperation::Add,
        &MessageFlags::system(SystemFlags::DELETED),
        None,
    )
    .unwrap();
    user.expunge("INBOX", None).unwrap();
    let changes = user.changes_since("INBOX", m0).unwrap();
    assert!(!changes.vanished.complete);
    assert_eq!(changes.vanished.ranges, [(1, 2), (4, 4), (6, 6)]);
}

#[test]
fn expunge_removes_only_deleted_and_respects_uid_set() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    append(&s, "INBOX", &["a", "b", "c", "d"]);
    let user = s.user("alice").unwrap();
    user.store_flags(
        "INBOX",
        &[1, 3, 4],
        FlagOperation::Add,
        &MessageFlags::system(SystemFlags::DELETED),
        None,
    )
    .unwrap();
    assert_eq!(user.expunge("INBOX", Some(&[3, 2])).unwrap().uids, [3]);
    assert_eq!(uids(&s, "INBOX"), [1, 2, 4]);
    assert_eq!(user.expunge("INBOX", None).unwrap().uids, [1, 4]);
    assert_eq!(uids(&s, "INBOX"), [2]);
    assert_eq!(
        fs::read_dir(tmp.path().join("alice/cur")).unwrap().count(),
        1
    );
}

#[test]
fn interrupted_append_leaves_nothing() {
    for point in [
        FaultPoint::AppendAfterTmpWrite(1),
        FaultPoint::AppendAfterRename(1),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            fault_injector: Some(Arc::new(move |p| {
                if p == point {
                    Err(io::Error::other("injected"))
                } else {
                    Ok(())
                }
            })),
            ..StoreConfig::default()
        };
        let s = ImapStore::new(tmp.path(), config);
        let user = s.user("alice").unwrap();
        let (a, b) = (msg("a"), msg("b"));
        let reqs = [
            AppendRequest {
                data: &a,
                flags: MessageFlags::default(),
                internal_date: None,
            },
            AppendRequest {
                data: &b,
                flags: MessageFlags::default(),
                internal_date: None,
            },
        ];
        assert!(user.append("INBOX", &reqs).is_err(), "{point:?}");
        for sub in ["cur", "new", "tmp"] {
            assert_eq!(
                fs::read_dir(tmp.path().join("alice").join(sub))
                    .unwrap()
                    .count(),
                0,
                "{point:?} {sub}"
            );
        }
        assert!(uids(&s, "INBOX").is_empty());
    }
}

#[test]
fn move_with_injected_failure_neither_loses_nor_duplicates() {
    for point in [
        FaultPoint::CopyBeforeCommit,
        FaultPoint::MoveBeforeSourceExpunge,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let fail = Arc::new(AtomicBool::new(false));
        let f2 = fail.clone();
        let config = StoreConfig {
            fault_injector: Some(Arc::new(move |p| {
                if p == point && f2.load(Ordering::SeqCst) {
                    Err(io::Error::other("injected"))
                } else {
                    Ok(())
                }
            })),
            ..StoreConfig::default()
        };
        let s = ImapStore::new(tmp.path(), config);
        let user = s.user("alice").unwrap();
        user.create("Archive").unwrap();
        append(&s, "INBOX", &["a", "b", "c"]);
        fail.store(true, Ordering::SeqCst);
        assert!(user.move_messages("INBOX", &[1, 3], "Archive").is_err());
        assert_eq!(uids(&s, "INBOX"), [1, 2, 3], "{point:?}");
        assert!(uids(&s, "Archive").is_empty(), "{point:?}");
        assert_eq!(
            fs::read_dir(tmp.path().join("alice/.Archive/tmp"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            fs::read_dir(tmp.path().join("alice/.Archive/cur"))
                .unwrap()
                .count(),
            0
        );
        fail.store(false, Ordering::SeqCst);
        let moved = user.move_messages("INBOX", &[1, 3], "Archive").unwrap();
        // Copies removed by the failed MOVE used their UIDs up; they are never reused.
        let first_free = if point == FaultPoint::CopyBeforeCommit {
            1
        } else {
            3
        };
        assert_eq!(
            moved.pairs,
            [(1, first_free), (3, first_free + 1)],
            "{point:?}"
        );
        assert_eq!(uids(&s, "INBOX"), [2]);
        assert_eq!(uids(&s, "Archive"), [first_free, first_free + 1]);
    }
}

#[test]
fn copy_keeps_flags_keywords_and_dates() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let user = s.user("alice").unwrap();
    user.create("Work/2024").unwrap();
    let a = msg("a");
    let mut flags = MessageFlags::system(SystemFlags::SEEN.union(SystemFlags::FLAGGED));
    flags.add_keyword("$Forwarded");
    let up = user
        .append(
            "INBOX",
            &[AppendRequest {
                data: &a,
                flags: flags.clone(),
                internal_date: Some(1_000_000_000),
            }],
        )
        .unwrap();
    let copied = user.copy("INBOX", &[up.uids[0], 99], "Work/2024").unwrap();
    assert_eq!(copied.pairs, [(1, 1)]);
    let snap = user.select("Work/2024", false).unwrap();
    assert_eq!(snap.uidvalidity, copied.uidvalidity);
    assert_eq!(snap.messages[0].flags, flags);
    assert_eq!(snap.messages[0].internal_date, 1_000_000_000);
    assert_eq!(snap.messages[0].size, a.len() as u64);
    assert_eq!(uids(&s, "INBOX"), [1]);
    assert!(matches!(
        user.copy("INBOX", &[1], "Nope"),
        Err(StoreError::NoSuchFolder)
    ));
}

#[test]
fn folders_create_list_rename_delete_subscribe() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let user = s.user("alice").unwrap();
    user.create("Archive/2024/Q1").unwrap();
    assert!(matches!(
        user.create("Archive"),
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        user.create("inbox"),
        Err(StoreError::AlreadyExists)
    ));
    user.create("Sent").unwrap();
    user.subscribe("Sent").unwrap();
    user.subscribe("Gone").unwrap();
    let list = user.list().unwrap();
    let show: Vec<(String, bool, bool, bool)> = list
        .iter()
        .map(|f| (f.name.clone(), f.exists, f.has_children, f.subscribed))
        .collect();
    assert_eq!(
        show,
        [
            ("INBOX".into(), true, false, false),
            ("Archive".into(), true, true, false),
            ("Archive/2024".into(), true, true, false),
            ("Archive/2024/Q1".into(), true, false, false),
            ("Gone".into(), false, false, true),
            ("Sent".into(), true, false, true),
        ]
    );
    assert!(list[5].special_use.is_some());
    assert!(matches!(
        user.delete("Archive"),
        Err(StoreError::HasChildren)
    ));
    assert!(matches!(
        user.delete("INBOX"),
        Err(StoreError::CannotDeleteInbox)
    ));
    assert!(matches!(user.delete("Nope"), Err(StoreError::NoSuchFolder)));

    append(&s, "Archive/2024/Q1", &["q1"]);
    let v = user.select("Archive/2024/Q1", false).unwrap().uidvalidity;
    user.rename("Archive/2024", "Old/2024").unwrap();
    let names: Vec<String> = user
        .list()
        .unwrap()
        .into_iter()
        .filter(|f| f.exists)
        .map(|f| f.name)
        .collect();
    assert_eq!(
        names,
        ["INBOX", "Archive", "Old", "Old/2024", "Old/2024/Q1", "Sent"]
    );
    let moved = user.select("Old/2024/Q1", false).unwrap();
    assert_eq!((moved.uidvalidity, moved.messages.len()), (v, 1));

    user.delete("Old/2024/Q1").unwrap();
    user.create("Old/2024/Q1").unwrap();
    let recreated = user.select("Old/2024/Q1", false).unwrap();
    assert!(
        recreated.uidvalidity > v,
        "a recreated folder needs a new UIDVALIDITY"
    );
    assert!(recreated.messages.is_empty());

    // Renaming INBOX moves its messages.
    append(&s, "INBOX", &["x", "y"]);
    user.rename("INBOX", "Saved").unwrap();
    assert!(uids(&s, "INBOX").is_empty());
    assert_eq!(uids(&s, "Saved").len(), 2);
    user.unsubscribe("Gone").unwrap();
    assert_eq!(user.subscriptions().unwrap(), ["Sent"]);
}

#[test]
fn notifier_and_rescans_show_other_sessions_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = store(tmp.path());
    let s2 = store(tmp.path()); // another "process": no shared memory
    let mut rx = s1.notifier().subscribe("alice", "INBOX");
    append(&s1, "INBOX", &["a"]);
    let change = rx.try_recv().unwrap();
    assert_eq!(change.folder, "INBOX");
    // The other store's writes reach s1 through a rescan.
    let m = s1
        .user("alice")
        .unwrap()
        .select("INBOX", false)
        .unwrap()
        .highest_modseq;
    append(&s2, "INBOX", &["b"]);
    let changes = s1.user("alice").unwrap().changes_since("INBOX", m).unwrap();
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [2]
    );
    // Mail dropped into new/ by another program.
    deliver(
        tmp.path(),
        "new",
        "99.ext.host",
        b"Subject: external\n\nhi\n",
    );
    s1.user("alice").unwrap().poll("INBOX").unwrap();
    assert!(rx.try_recv().is_ok());
    assert_eq!(uids(&s1, "INBOX"), [1, 2, 3]);
}

#[test]
fn fetch_renders_and_sets_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    deliver(
        tmp.path(),
        "new",
        "1.x",
        b"Subject: hi\nFrom: Bob <bob@example.test>\n\nline one\nline two\n",
    );
    let user = s.user("alice").unwrap();
    let snap = user.select("INBOX", true).unwrap();
    assert_eq!(snap.recent, [1]);
    let items = [
        FetchAttribute::Uid,
        FetchAttribute::Rfc822Size,
        FetchAttribute::Envelope,
        FetchAttribute::BodySection {
            peek: false,
            section: Default::default(),
            partial: None,
        },
    ];
    let out = user
        .fetch(
            "INBOX",
            &[1],
            &items,
            &FetchOptions {
                set_seen: true,
                recent: &[1],
                changed_since: None,
                format: Default::default(),
            },
        )
        .unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].seen_set);
    let FetchItem::BodySection { data, .. } = &out[0].items[3] else {
        panic!()
    };
    let body = data.as_bytes().unwrap();
    assert_eq!(
        body,
        b"Subject: hi\r\nFrom: Bob <bob@example.test>\r\n\r\nline one\r\nline two\r\n"
    );
    assert_eq!(body.len() as u64, snap.messages[0].size);
    // FLAGS added because \Seen changed.
    assert!(matches!(out[0].items.last(), Some(FetchItem::Flags(f)) if f.len() == 2));
    let again = user.select("INBOX", false).unwrap();
    assert!(again.messages[0].flags.system.contains(SystemFlags::SEEN));
}

#[test]
fn search_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    append(&s, "INBOX", &["apple pie", "Banana split", "cherry"]);
    let user = s.user("alice").unwrap();
    user.store_flags(
        "INBOX",
        &[2],
        FlagOperation::Add,
        &MessageFlags::system(SystemFlags::SEEN),
        None,
    )
    .unwrap();
    let ctx = SearchContext {
        uids: &[1, 2, 3],
        recent: &[],
        saved: None,
        now: 0,
        format: Default::default(),
    };
    let run = |k: SearchKey<'_>| user.search("INBOX", &k, &ctx).unwrap().0;
    use cas_imap_proto::types::AString;
    assert_eq!(run(SearchKey::Seen), [2]);
    assert_eq!(run(SearchKey::Unseen), [1, 3]);
    assert_eq!(
        run(SearchKey::Subject(AString::new(&b"BANANA"[..]).unwrap())),
        [2]
    );
    assert_eq!(
        run(SearchKey::Body(AString::new(&b"cherry"[..]).unwrap())),
        [3]
    );
    assert_eq!(
        run(SearchKey::Text(AString::new(&b"a@example"[..]).unwrap())),
        [1, 2, 3]
    );
    assert_eq!(
        run(SearchKey::Not(Box::new(SearchKey::Or(
            Box::new(SearchKey::Seen),
            Box::new(SearchKey::Subject(AString::new(&b"apple"[..]).unwrap()))
        )))),
        [3]
    );
}

#[test]
fn concurrent_sessions_in_threads_never_share_a_uid() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    s.user("alice").unwrap().create("Work").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            // Half the threads use their own store: the file lock, not shared memory, must
            // serialize them.
            let s = if t % 2 == 0 {
                s.clone()
            } else {
                store(tmp.path())
            };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..10 {
                    got.extend(append(&s, "Work", &[&format!("t{t} m{i}")]));
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>());
    assert_eq!(uids(&s, "Work"), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_pushes_external_delivery_within_two_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    s.user("alice").unwrap().select("INBOX", false).unwrap();
    let mut rx = s.notifier().subscribe("alice", "inbox");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let watcher = cas_server::imap_store::notify::spawn_watcher(
        s.clone(),
        cas_server::imap_store::notify::WATCH_INTERVAL,
        shutdown.clone(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    deliver(
        tmp.path(),
        "new",
        "77.other.host",
        b"Subject: pushed\n\nhi\n",
    );
    let change = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv())
        .await
        .expect("no notification within 2 s")
        .unwrap();
    assert_eq!(
        (change.user.as_str(), change.folder.as_str()),
        ("alice", "INBOX")
    );
    let changes = s.user("alice").unwrap().changes_since("INBOX", 0).unwrap();
    assert_eq!(changes.exists, 1);
    shutdown.cancel();
    watcher.await.unwrap();
}

const MIME: &[u8] = b"From: \"Joe Q. Public\" <john.q.public@example.com>\r\n\
To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\r\n\
Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>\r\n\
Bcc: A Group:Ed Jones <c@a.test>,joe@where.test;\r\n\
Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\
Message-ID: <5678.21-Nov-1997@example.com>\r\n\
Subject: multipart test\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=C3=BC=C3=9Fe, caf=C3=A9=\r\n\
\x20soft\r\n\
--XX\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAEC/f7/\r\n\
--XX--\r\n";

fn fetch_one(
    user: &cas_server::imap_store::UserStore,
    item: FetchAttribute<'static>,
) -> FetchItem<'static> {
    let out = user
        .fetch("INBOX", &[1], &[item], &FetchOptions::default())
        .unwrap();
    out.into_iter()
        .next()
        .unwrap()
        .items
        .into_iter()
        .next()
        .unwrap()
}

fn nz(parts: &[u32]) -> Vec<std::num::NonZeroU32> {
    parts
        .iter()
        .map(|&p| std::num::NonZeroU32::new(p).unwrap())
        .collect()
}

#[test]
fn fetch_binary_partial_and_structure_known_answers() {
    use cas_imap_proto::command::PartialRange;
    use cas_imap_proto::encode::to_bytes;
    use cas_imap_proto::types::{Section, SectionText};
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    deliver(tmp.path(), "cur", "1.mime:2,", MIME);
    let user = s.user("alice").unwrap();

    let FetchItem::Binary { data, .. } = fetch_one(
        &user,
        FetchAttribute::Binary {
            peek: true,
            part: nz(&[1]),
            partial: None,
        },
    ) else {
        panic!()
    };
    assert_eq!(data.as_bytes().unwrap(), "Grüße, café soft".as_bytes());
    let FetchItem::Binary { data, .. } = fetch_one(
        &user,
        FetchAttribute::Binary {
            peek: true,
            part: nz(&[2]),
            partial: None,
        },
    ) else {
        panic!()
    };
    assert_eq!(data.as_bytes().unwrap(), &[0, 1, 2, 0xfd, 0xfe, 0xff]);
    assert_eq!(
        fetch_one(&user, FetchAttribute::BinarySize { part: nz(&[2]) }),
        FetchItem::BinarySize {
            section: nz(&[2]),
            size: 6
        }
    );
    let partial = Some(PartialRange {
        offset: 2,
        length: std::num::NonZeroU32::new(3).unwrap(),
    });
    let FetchItem::Binary { data, .. } = fetch_one(
        &user,
        FetchAttribute::Binary {
            peek: true,
            part: nz(&[2]),
            partial,
        },
    ) else {
        panic!()
    };
    assert_eq!(data.as_bytes().unwrap(), &[2, 0xfd, 0xfe]);

    let item = fetch_one(
        &user,
        FetchAttribute::BodySection {
            peek: true,
            section: Section::new(vec![], Some(SectionText::Header)).unwrap(),
            partial: Some(PartialRange {
                offset: 0,
                length: std::num::NonZeroU32::new(6).unwrap(),
            }),
        },
    );
    // Message data is always a literal (fetchmail reads nothing else there).
    assert_eq!(to_bytes(&item), b"BODY[HEADER]<0> {6}\r\nFrom: ");
    let item = fetch_one(
        &user,
        FetchAttribute::BodySection {
            peek: true,
            section: Section::new(nz(&[2]), Some(SectionText::Mime)).unwrap(),
            partial: None,
        },
    );
    assert_eq!(
        to_bytes(&item),
        b"BODY[2.MIME] {77}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );

    // ENVELOPE: RFC 5322 §A.1.3-style groups and quoted names.
    let env = String::from_utf8(to_bytes(&fetch_one(&user, FetchAttribute::Envelope))).unwrap();
    assert_eq!(
        env,
        "ENVELOPE (\"Tue, 1 Jul 2003 10:52:37 +0200\" \"multipart test\" \
         ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) \
         ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) \
         ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) \
         ((\"Mary Smith\" NIL \"mary\" \"x.test\")(NIL NIL \"jdoe\" \"example.org\")(\"Who?\" NIL \"one\" \"y.test\")) \
         ((NIL NIL \"boss\" \"nil.test\")(\"Giant; \\\"Big\\\" Box\" NIL \"sysservices\" \"example.net\")) \
         ((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")(NIL NIL NIL NIL)) \
         NIL \"<5678.21-Nov-1997@example.com>\")"
    );
    // BODYSTRUCTURE after ENVELOPE comes from the cache; the body structure is complete.
    let bs = String::from_utf8(to_bytes(&fetch_one(&user, FetchAttribute::BodyStructure))).unwrap();
    assert_eq!(
        bs,
        "BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 34 2 NIL NIL NIL NIL)\
         (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 8 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)"
    );
    let fast =
        String::from_utf8(to_bytes(&fetch_one(&user, FetchAttribute::InternalDate))).unwrap();
    assert!(fast.starts_with("INTERNALDATE \""), "{fast}");
    // An unknown transfer encoding is the RFC 3516 error.
    deliver(
        tmp.path(),
        "cur",
        "2.uu:2,",
        b"Content-Transfer-Encoding: x-uue\r\n\r\nbegin\r\n",
    );
    s.user("alice").unwrap().select("INBOX", false).unwrap();
    let err = user
        .fetch(
            "INBOX",
            &[2],
            &[FetchAttribute::Binary {
                peek: true,
                part: nz(&[1]),
                partial: None,
            }],
            &FetchOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownCte));
    assert_eq!(
        err.response_code(),
        Some(cas_imap_proto::code::ResponseCode::UnknownCte)
    );
}

#[test]
fn search_each_key_kind() {
    use cas_imap_proto::types::{AString, Atom, Date, SeqOrUid, SequenceSet, SequenceSetArg};
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let user = s.user("alice").unwrap();
    let mk = |subject: &str, date: &str, extra: &str, body: &str| {
        format!("From: Ann <ann@a.test>\r\nTo: Bob <bob@b.test>\r\nCc: cc@c.test\r\nBcc: hidden@d.test\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}\r\n{body}\r\n").into_bytes()
    };
    let msgs = [
        mk(
            "=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
            "Mon, 1 Jan 2024 10:00:00 +0000",
            "",
            "small",
        ),
        mk(
            "Second",
            "Wed, 10 Jan 2024 23:30:00 -0500",
            "X-Tag: Blue\r\n",
            &"large body ".repeat(100),
        ),
        mk(
            "Third",
            "Sat, 20 Jan 2024 08:00:00 +0000",
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
            "SGVsbG8gV8O2cmxk",
        ),
    ];
    let dates = [1_704_103_200, 1_704_947_400, 1_705_737_600]; // 1, 11 (UTC), 20 Jan 2024
    let reqs: Vec<AppendRequest<'_>> = msgs
        .iter()
        .zip(dates)
        .map(|(m, d)| AppendRequest {
            data: m,
            flags: MessageFlags::default(),
            internal_date: Some(d),
        })
        .collect();
    user.append("INBOX", &reqs).unwrap();
    let mut kw = MessageFlags::system(SystemFlags::FLAGGED.union(SystemFlags::ANSWERED));
    kw.add_keyword("$Work");
    user.store_flags("INBOX", &[2], FlagOperation::Add, &kw, None)
        .unwrap();
    user.store_flags(
        "INBOX",
        &[3],
        FlagOperation::Add,
        &MessageFlags::system(
            SystemFlags::DRAFT
                .union(SystemFlags::DELETED)
                .union(SystemFlags::SEEN),
        ),
        None,
    )
    .unwrap();
    let modseq_3 = user.select("INBOX", false).unwrap().messages[2].modseq;

    let ctx = SearchContext {
        uids: &[1, 2, 3],
        recent: &[1],
        saved: Some(&[3]),
        now: 1_705_737_600 + 3_600,
        format: Default::default(),
    };
    let run = |k: SearchKey<'_>| user.search("INBOX", &k, &ctx).unwrap().0;
    let a = |t: &'static str| AString::new(t.as_bytes()).unwrap();
    let d = |y, m, dd| Date::new(y, m, dd).unwrap();
    let set = |lo: u32, hi: Option<u32>| {
        let lo = SeqOrUid::Value(std::num::NonZeroU32::new(lo).unwrap());
        let hi = hi.map_or(SeqOrUid::Asterisk, |h| {
            SeqOrUid::Value(std::num::NonZeroU32::new(h).unwrap())
        });
        SequenceSetArg::Set(SequenceSet::range(lo, hi))
    };
    // Flags and keywords.
    assert_eq!(run(SearchKey::All), [1, 2, 3]);
    assert_eq!(run(SearchKey::Answered), [2]);
    assert_eq!(run(SearchKey::Unanswered), [1, 3]);
    assert_eq!(run(SearchKey::Flagged), [2]);
    assert_eq!(run(SearchKey::Unflagged), [1, 3]);
    assert_eq!(run(SearchKey::Deleted), [3]);
    assert_eq!(run(SearchKey::Undeleted), [1, 2]);
    assert_eq!(run(SearchKey::Draft), [3]);
    assert_eq!(run(SearchKey::Undraft), [1, 2]);
    assert_eq!(run(SearchKey::Seen), [3]);
    assert_eq!(run(SearchKey::Unseen), [1, 2]);
    assert_eq!(run(SearchKey::Recent), [1]);
    assert_eq!(run(SearchKey::New), [1]);
    assert_eq!(run(SearchKey::Old), [2, 3]);
    assert_eq!(run(SearchKey::Keyword(Atom::new("$work").unwrap())), [2]);
    assert_eq!(
        run(SearchKey::Unkeyword(Atom::new("$Work").unwrap())),
        [1, 3]
    );
    // INTERNALDATE (UTC days) and sent dates (as written in Date:).
    assert_eq!(run(SearchKey::Before(d(2024, 1, 11))), [1]);
    assert_eq!(run(SearchKey::On(d(2024, 1, 11))), [2]);
    assert_eq!(run(SearchKey::Since(d(2024, 1, 11))), [2, 3]);
    assert_eq!(run(SearchKey::SentBefore(d(2024, 1, 10))), [1]);
    assert_eq!(run(SearchKey::SentOn(d(2024, 1, 10))), [2]);
    assert_eq!(run(SearchKey::SentSince(d(2024, 1, 10))), [2, 3]);
    assert_eq!(
        run(SearchKey::Older(std::num::NonZeroU32::new(86_400).unwrap())),
        [1, 2]
    );
    assert_eq!(
        run(SearchKey::Younger(
            std::num::NonZeroU32::new(86_400).unwrap()
        )),
        [3]
    );
    // Sizes.
    assert_eq!(run(SearchKey::Larger(500)), [2]);
    assert_eq!(run(SearchKey::Smaller(500)), [1, 3]);
    // Headers, decoded and raw, case-insensitive.
    assert_eq!(run(SearchKey::Subject(a("grüsse"))), Vec::<u32>::new());
    assert_eq!(run(SearchKey::Subject(a("GRÜẞE"))), [1]);
    assert_eq!(run(SearchKey::Subject(a("grüße"))), [1]);
    assert_eq!(run(SearchKey::Subject(a("=c3=bc"))), [1]);
    assert_eq!(run(SearchKey::From(a("ANN@A.TEST"))), [1, 2, 3]);
    assert_eq!(run(SearchKey::To(a("bob"))), [1, 2, 3]);
    assert_eq!(run(SearchKey::Cc(a("cc@c"))), [1, 2, 3]);
    assert_eq!(run(SearchKey::Bcc(a("hidden"))), [1, 2, 3]);
    assert_eq!(run(SearchKey::Header(a("x-tag"), a("blue"))), [2]);
    assert_eq!(run(SearchKey::Header(a("X-Tag"), a(""))), [2]);
    // Body (decoded base64 + charset) and text.
    assert_eq!(run(SearchKey::Body(a("wörld"))), [3]);
    assert_eq!(run(SearchKey::Body(a("LARGE"))), [2]);
    assert_eq!(run(SearchKey::Body(a("Second"))), Vec::<u32>::new());
    assert_eq!(run(SearchKey::Text(a("second"))), [2]);
    // Sets, UIDs, saved result, MODSEQ.
    assert_eq!(run(SearchKey::SequenceSet(set(2, None))), [2, 3]);
    assert_eq!(run(SearchKey::Uid(set(1, Some(2)))), [1, 2]);
    assert_eq!(run(SearchKey::Uid(SequenceSetArg::SavedResult)), [3]);
    let (hits, highest) = user
        .search(
            "INBOX",
            &SearchKey::ModSeq {
                entry: None,
                mod_seq: modseq_3,
            },
            &ctx,
        )
        .unwrap();
    assert_eq!((hits, highest), (vec![3], modseq_3));
    // Boolean structure.
    assert_eq!(run(SearchKey::Not(Box::new(SearchKey::Seen))), [1, 2]);
    assert_eq!(
        run(SearchKey::Or(
            Box::new(SearchKey::Flagged),
            Box::new(SearchKey::Draft)
        )),
        [2, 3]
    );
    assert_eq!(
        run(SearchKey::And(vec![
            SearchKey::Unseen,
            SearchKey::Larger(500)
        ])),
        [2]
    );
    // Only the session's messages are searched.
    let narrow = SearchContext {
        uids: &[2],
        ..ctx.clone()
    };
    assert_eq!(
        user.search("INBOX", &SearchKey::All, &narrow).unwrap().0,
        [2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_starts_the_watcher_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    s.user("alice").unwrap().create("Lists").unwrap();
    let mut rx = s.notifier().subscribe("alice", "Lists");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    deliver(
        tmp.path(),
        ".Lists/new",
        "1.list.host",
        b"Subject: list mail\n\nhi\n",
    );
    let change = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv())
        .await
        .expect("no notification within 2 s")
        .unwrap();
    assert_eq!(change.folder, "Lists");
    let snap = s.user("alice").unwrap().select("Lists", false).unwrap();
    assert_eq!(snap.messages.len(), 1);
}

/// MessageRetrievalMimeFormat at the store: FETCH under TextOnly serves the converted
/// message (RFC822.SIZE = BODY[] length, no HTML part), BestBodyFormat the stored bytes;
/// SEARCH looks at the served form (header, body and size keys); the file never changes.
#[test]
fn fetch_and_search_in_a_mime_format() {
    use cas_imap_proto::types::{AString, Section};
    use cas_server::mime::BodyFormat;
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let stored = b"From: a@example.test\r\nSubject: report\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nQuarterly numbers\r\n--b\r\nContent-Type: text/html\r\n\r\n\
<html><body><p class=\"highlight\">Quarterly numbers</p></body></html>\r\n--b--\r\n";
    let user = s.user("alice").unwrap();
    user.append(
        "INBOX",
        &[AppendRequest {
            data: stored,
            flags: MessageFlags::default(),
            internal_date: None,
        }],
    )
    .unwrap();
    let items = [
        FetchAttribute::Rfc822Size,
        FetchAttribute::BodySection {
            peek: true,
            section: Section::new(Vec::new(), None).unwrap(),
            partial: None,
        },
    ];
    let fetch = |format| {
        let out = user
            .fetch(
                "INBOX",
                &[1],
                &items,
                &FetchOptions {
                    format,
                    ..FetchOptions::default()
                },
            )
            .unwrap();
        let [
            FetchItem::Rfc822Size(size),
            FetchItem::BodySection { data, .. },
        ] = out[0].items.as_slice()
        else {
            panic!("{out:?}")
        };
        (*size, data.0.as_ref().unwrap().as_bytes().to_vec())
    };
    let (size, body) = fetch(BodyFormat::BestBodyFormat);
    assert_eq!(body, stored);
    assert_eq!(size, stored.len() as u64);
    let (text_size, text) = fetch(BodyFormat::TextOnly);
    assert_eq!(text_size, text.len() as u64);
    let text_str = String::from_utf8_lossy(&text);
    assert!(text_str.contains("Quarterly numbers"), "{text_str}");
    assert!(!text_str.contains("text/html") && !text_str.contains("highlight"));

    let search = |format, key: SearchKey<'_>| {
        let ctx = SearchContext {
            uids: &[1],
            format,
            ..SearchContext::default()
        };
        user.search("INBOX", &key, &ctx).unwrap().0
    };
    let a = |t: &'static str| AString::new(t.as_bytes()).unwrap();
    let html_word = || SearchKey::Body(a("highlight"));
    assert_eq!(search(BodyFormat::BestBodyFormat, html_word()), [1]);
    assert!(search(BodyFormat::TextOnly, html_word()).is_empty());
    assert_eq!(search(BodyFormat::HtmlOnly, html_word()), [1]);
    let alternative = || SearchKey::Header(a("Content-Type"), a("multipart/alternative"));
    assert_eq!(search(BodyFormat::BestBodyFormat, alternative()), [1]);
    assert!(search(BodyFormat::TextOnly, alternative()).is_empty());
    // LARGER/SMALLER compare the size FETCH reports in that format.
    assert!(text_size < size);
    assert_eq!(
        search(BodyFormat::TextOnly, SearchKey::Larger(text_size - 1)),
        [1]
    );
    assert!(search(BodyFormat::TextOnly, SearchKey::Larger(text_size)).is_empty());
    assert_eq!(
        search(BodyFormat::BestBodyFormat, SearchKey::Larger(text_size)),
        [1]
    );
    assert_eq!(
        search(BodyFormat::TextOnly, SearchKey::Smaller(text_size + 1)),
        [1]
    );

    let files: Vec<_> = fs::read_dir(tmp.path().join("alice").join("cur"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files, [stored.to_vec()]);
}
