//! Demo folders for the embedded default: `Sent`, `Drafts`, `Trash`, `Junk` and `Archive`,
//! with some of the sample mail in `Archive` and `Sent`, so a new user sees a hierarchy with
//! SPECIAL-USE folders. INBOX keeps the POP3 samples untouched.

use std::path::Path;

use super::{AppendRequest, ImapStore, MessageFlags, StoreConfig, StoreError, SystemFlags};

/// The folders made for every demo user, in order.
pub const DEMO_FOLDERS: [&str; 6] = ["Sent", "Drafts", "Trash", "Junk", "Archive", "Archive/2025"];

/// Makes the demo folders of `user` under `maildir_root` and fills `Archive/2025` and `Sent`
/// with copies of some of `samples`. Folders that exist are left alone, so a second call
/// changes nothing.
pub fn populate_demo_folders(
    maildir_root: &Path,
    user: &str,
    samples: &[Vec<u8>],
) -> Result<(), StoreError> {
    let store = ImapStore::new(maildir_root, StoreConfig::default());
    let mailbox = store.user(user)?;
    let existing: Vec<String> = mailbox
        .list()?
        .into_iter()
        .filter(|f| f.exists)
        .map(|f| f.name)
        .collect();
    for folder in DEMO_FOLDERS {
        if existing.iter().any(|e| e == folder) {
            continue;
        }
        mailbox.create(folder)?;
        mailbox.subscribe(folder)?;
        let seen = MessageFlags::system(SystemFlags::SEEN);
        let picks: Vec<AppendRequest<'_>> = match folder {
            // Two older samples, read, as archived mail.
            "Archive/2025" => samples
                .iter()
                .take(2)
                .enumerate()
                .map(|(i, data)| AppendRequest {
                    data,
                    flags: seen.clone(),
                    internal_date: Some(1_763_884_800 - 86_400 * (30 - i as i64)),
                })
                .collect(),
            // One message "sent" by the user, answered and read.
            "Sent" => samples
                .iter()
                .skip(3)
                .take(1)
                .map(|data| AppendRequest {
                    data,
                    flags: MessageFlags::system(SystemFlags::SEEN.union(SystemFlags::ANSWERED)),
                    internal_date: Some(1_763_884_800 - 3_600),
                })
                .collect(),
            _ => Vec::new(),
        };
        if !picks.is_empty() {
            mailbox.append(folder, &picks)?;
        }
    }
    mailbox.subscribe("INBOX")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_folders_are_made_once() {
        let tmp = tempfile::tempdir().unwrap();
        let samples = crate::demo::sample_messages("alice");
        populate_demo_folders(tmp.path(), "alice", &samples).unwrap();
        let store = ImapStore::new(tmp.path(), StoreConfig::default());
        let user = store.user("alice").unwrap();
        let list = user.list().unwrap();
        let names: Vec<&str> = list.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "INBOX",
                "Archive",
                "Archive/2025",
                "Drafts",
                "Junk",
                "Sent",
                "Trash"
            ]
        );
        let sent = list.iter().find(|f| f.name == "Sent").unwrap();
        assert!(sent.subscribed && sent.special_use.is_some());
        assert_eq!(user.status("Archive/2025").unwrap().messages, 2);
        assert_eq!(user.status("Sent").unwrap().messages, 1);
        let before = user.status("Archive/2025").unwrap();
        populate_demo_folders(tmp.path(), "alice", &samples).unwrap();
        assert_eq!(user.status("Archive/2025").unwrap(), before);
    }
}
