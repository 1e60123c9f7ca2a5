//! The response encoder (server side). Total: every value encodes to bytes that
//! [`super::parse_response`] reads back to the same value.
//!
//! Servers should encode with [`crate::encode::LiteralPolicy::Sync`]: responses never use
//! non-synchronizing literals (RFC 9051 §4.3), and that policy writes every literal as `{n}`
//! whatever mode the value carries.

use super::{
    Base64, ContinueRequest, Data, Delimiter, ESearch, ESearchItem, FetchItem, GmailLabel,
    ListExtendedItem, MailboxList, MetadataEntries, NamespaceDescription, QuotaUsage, Response,
    ResponseText, Status, StatusResponse, StatusValue, TaggedExtComp, TaggedExtValue, TaggedLabel,
    Text, Thread,
};
use crate::encode::{Encode, Encoder, join, paren_list};
use crate::types::encode_part;

impl Encode for Response<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Status(s) => s.encode(out),
            Self::Data(d) => d.encode(out),
            Self::Continue(c) => c.encode(out),
        }
    }
}

impl Encode for Status {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(match self {
            Self::Ok => b"OK",
            Self::No => b"NO",
            Self::Bad => b"BAD",
        });
    }
}

impl Encode for StatusResponse<'_> {
    /// Writes the whole response line including CRLF.
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Tagged { tag, status, text } => {
                tag.encode(out);
                out.push_sp();
                status.encode(out);
                text.encode(out);
            }
            Self::Untagged { status, text } => {
                out.push_bytes(b"* ");
                status.encode(out);
                text.encode(out);
            }
            Self::PreAuth(text) => {
                out.push_bytes(b"* PREAUTH");
                text.encode(out);
            }
            Self::Bye(text) => {
                out.push_bytes(b"* BYE");
                text.encode(out);
            }
        }
        out.push_crlf();
    }
}

impl Encode for ResponseText<'_> {
    /// Writes `SP resp-text`: the space that follows the status keyword, the code in brackets
    /// and the text.
    fn encode(&self, out: &mut Encoder) {
        out.push_sp();
        if let Some(code) = &self.code {
            out.push_bytes(b"[");
            code.encode(out);
            out.push_bytes(b"] ");
        }
        self.text.encode(out);
    }
}

impl Encode for Text<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_bytes());
    }
}

impl Encode for ContinueRequest<'_> {
    /// Writes the whole continuation request including CRLF.
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"+");
        match self {
            Self::Basic(text) => text.encode(out),
            Self::Base64(data) => {
                out.push_sp();
                data.encode(out);
            }
        }
        out.push_crlf();
    }
}

impl Encode for Base64<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_bytes());
    }
}

impl Encode for Delimiter {
    /// Writes `DQUOTE QUOTED-CHAR DQUOTE`.
    fn encode(&self, out: &mut Encoder) {
        let mut buf = [0u8; 4];
        out.push_bytes(b"\"");
        if matches!(self.as_char(), '"' | '\\') {
            out.push_bytes(b"\\");
        }
        out.push_bytes(self.as_char().encode_utf8(&mut buf).as_bytes());
        out.push_bytes(b"\"");
    }
}

fn encode_delimiter(delimiter: Option<Delimiter>, out: &mut Encoder) {
    match delimiter {
        Some(d) => d.encode(out),
        None => out.push_bytes(b"NIL"),
    }
}

impl Encode for Data<'_> {
    /// Writes the whole untagged response line including `* ` and CRLF.
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"* ");
        match self {
            Self::Capability(caps) => {
                out.push_bytes(b"CAPABILITY");
                for c in caps {
                    out.push_sp();
                    c.encode(out);
                }
            }
            Self::Enabled(caps) => {
                out.push_bytes(b"ENABLED");
                for c in caps {
                    out.push_sp();
                    c.encode(out);
                }
            }
            Self::List(list) => {
                out.push_bytes(b"LIST ");
                list.encode(out);
            }
            Self::Lsub(list) => {
                out.push_bytes(b"LSUB ");
                list.encode(out);
            }
            Self::Status { mailbox, items } => {
                out.push_bytes(b"STATUS ");
                mailbox.encode(out);
                out.push_sp();
                paren_list(items, out);
            }
            Self::Search { numbers, mod_seq } => {
                out.push_bytes(b"SEARCH");
                for n in numbers {
                    out.push_sp();
                    out.push_number(u64::from(n.get()));
                }
                if let Some(m) = mod_seq {
                    out.push_bytes(b" (MODSEQ ");
                    m.encode(out);
                    out.push_bytes(b")");
                }
            }
            Self::ESearch(e) => e.encode(out),
            Self::Flags(flags) => {
                out.push_bytes(b"FLAGS ");
                paren_list(flags, out);
            }
            Self::Exists(n) => {
                out.push_number(u64::from(*n));
                out.push_bytes(b" EXISTS");
            }
            Self::Recent(n) => {
                out.push_number(u64::from(*n));
                out.push_bytes(b" RECENT");
            }
            Self::Expunge(n) => {
                out.push_number(u64::from(n.get()));
                out.push_bytes(b" EXPUNGE");
            }
            Self::Vanished { earlier, uids } => {
                out.push_bytes(if *earlier {
                    b"VANISHED (EARLIER) "
                } else {
                    b"VANISHED "
                });
                uids.encode(out);
            }
            Self::Fetch { seq, items } => {
                out.push_number(u64::from(seq.get()));
                out.push_bytes(b" FETCH ");
                paren_list(items, out);
            }
            Self::Namespace {
                personal,
                other,
                shared,
            } => {
                out.push_bytes(b"NAMESPACE");
                for ns in [personal, other, shared] {
                    out.push_sp();
                    if ns.is_empty() {
                        out.push_bytes(b"NIL");
                    } else {
                        out.push_bytes(b"(");
                        for d in ns {
                            d.encode(out);
                        }
                        out.push_bytes(b")");
                    }
                }
            }
            Self::Id(params) => {
                out.push_bytes(b"ID ");
                match params {
                    None => out.push_bytes(b"NIL"),
                    Some(params) => {
                        out.push_bytes(b"(");
                        for (i, (k, v)) in params.iter().enumerate() {
                            if i > 0 {
                                out.push_sp();
                            }
                            k.encode(out);
                            out.push_sp();
                            v.encode(out);
                        }
                        out.push_bytes(b")");
                    }
                }
            }
            Self::Quota { root, resources } => {
                out.push_bytes(b"QUOTA ");
                root.encode(out);
                out.push_sp();
                paren_list(resources, out);
            }
            Self::Metadata { mailbox, entries } => {
                out.push_bytes(b"METADATA ");
                mailbox.encode(out);
                match entries {
                    MetadataEntries::Values(values) => {
                        out.push_bytes(b" (");
                        for (i, (name, value)) in values.iter().enumerate() {
                            if i > 0 {
                                out.push_sp();
                            }
                            name.encode(out);
                            out.push_sp();
                            value.encode(out);
                        }
                        out.push_bytes(b")");
                    }
                    MetadataEntries::Names(names) => {
                        for name in names {
                            out.push_sp();
                            name.encode(out);
                        }
                    }
                }
            }
            Self::Sort(numbers) => {
                out.push_bytes(b"SORT");
                for n in numbers {
                    out.push_sp();
                    out.push_number(u64::from(n.get()));
                }
            }
            Self::Thread(threads) => {
                out.push_bytes(b"THREAD");
                if !threads.is_empty() {
                    out.push_sp();
                    for t in threads {
                        t.encode(out);
                    }
                }
            }
            Self::QuotaRoot { mailbox, roots } => {
                out.push_bytes(b"QUOTAROOT ");
                mailbox.encode(out);
                for r in roots {
                    out.push_sp();
                    r.encode(out);
                }
            }
        }
        out.push_crlf();
    }
}

impl Encode for MailboxList<'_> {
    fn encode(&self, out: &mut Encoder) {
        paren_list(&self.attributes, out);
        out.push_sp();
        encode_delimiter(self.delimiter, out);
        out.push_sp();
        self.mailbox.encode(out);
        if !self.extended.is_empty() {
            out.push_sp();
            paren_list(&self.extended, out);
        }
    }
}

impl Encode for ListExtendedItem<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::ChildInfo(opts) => {
                // Quoted, as in the RFC 5258 and RFC 9051 examples.
                out.push_bytes(b"\"CHILDINFO\" ");
                paren_list(opts, out);
            }
            Self::OldName(mailbox) => {
                out.push_bytes(b"\"OLDNAME\" (");
                mailbox.encode(out);
                out.push_bytes(b")");
            }
            Self::Other { tag, value } => {
                tag.encode(out);
                out.push_sp();
                value.encode(out);
            }
        }
    }
}

impl Encode for TaggedExtValue<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Number(n) => out.push_number(*n),
            Self::SequenceSet(s) => s.encode(out),
            Self::Comp(items) => paren_list(items, out),
        }
    }
}

impl Encode for TaggedExtComp<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::AString(s) => s.encode(out),
            Self::List(items) => paren_list(items, out),
        }
    }
}

impl Encode for StatusValue<'_> {
    fn encode(&self, out: &mut Encoder) {
        let (name, value): (&[u8], Option<u64>) = match self {
            Self::Messages(n) => (b"MESSAGES", Some(u64::from(*n))),
            Self::UidNext(n) => (b"UIDNEXT", Some(u64::from(n.get()))),
            Self::UidValidity(n) => (b"UIDVALIDITY", Some(u64::from(n.get()))),
            Self::Unseen(n) => (b"UNSEEN", Some(u64::from(*n))),
            Self::Deleted(n) => (b"DELETED", Some(u64::from(*n))),
            Self::Size(n) => (b"SIZE", Some(*n)),
            Self::Recent(n) => (b"RECENT", Some(u64::from(*n))),
            Self::HighestModSeq(n) => (b"HIGHESTMODSEQ", Some(*n)),
            Self::AppendLimit(n) => (b"APPENDLIMIT", n.map(u64::from)),
            Self::DeletedStorage(n) => (b"DELETED-STORAGE", Some(*n)),
            Self::MailboxId(id) => {
                out.push_bytes(b"MAILBOXID (");
                out.push_bytes(id.as_bytes());
                out.push_bytes(b")");
                return;
            }
        };
        out.push_bytes(name);
        out.push_sp();
        match value {
            Some(n) => out.push_number(n),
            None => out.push_bytes(b"NIL"),
        }
    }
}

impl Encode for ESearch<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"ESEARCH");
        if let Some(tag) = &self.tag {
            // RFC 4466 has tag-string = string: quoted suits both it and RFC 9051's astring.
            out.push_bytes(b" (TAG \"");
            tag.encode(out);
            out.push_bytes(b"\")");
        }
        if self.uid {
            out.push_bytes(b" UID");
        }
        for item in &self.items {
            out.push_sp();
            item.encode(out);
        }
    }
}

impl Encode for ESearchItem<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Min(n) => {
                out.push_bytes(b"MIN ");
                out.push_number(u64::from(n.get()));
            }
            Self::Max(n) => {
                out.push_bytes(b"MAX ");
                out.push_number(u64::from(n.get()));
            }
            Self::All(set) => {
                out.push_bytes(b"ALL ");
                set.encode(out);
            }
            Self::Count(n) => {
                out.push_bytes(b"COUNT ");
                out.push_number(u64::from(*n));
            }
            Self::ModSeq(m) => {
                out.push_bytes(b"MODSEQ ");
                m.encode(out);
            }
            Self::Other { name, value } => {
                name.encode(out);
                out.push_sp();
                value.encode(out);
            }
        }
    }
}

impl Encode for TaggedLabel<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(self.as_bytes());
    }
}

impl Encode for NamespaceDescription<'_> {
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"(");
        self.prefix.encode(out);
        out.push_sp();
        encode_delimiter(self.delimiter, out);
        for (name, values) in &self.extensions {
            out.push_sp();
            name.encode(out);
            out.push_sp();
            paren_list(values, out);
        }
        out.push_bytes(b")");
    }
}

impl Encode for QuotaUsage<'_> {
    fn encode(&self, out: &mut Encoder) {
        self.resource.encode(out);
        out.push_sp();
        out.push_number(self.usage);
        out.push_sp();
        out.push_number(self.limit);
    }
}

impl Encode for FetchItem<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::Flags(flags) => {
                out.push_bytes(b"FLAGS ");
                paren_list(flags, out);
            }
            Self::InternalDate(d) => {
                out.push_bytes(b"INTERNALDATE ");
                d.encode(out);
            }
            Self::Rfc822Size(n) => {
                out.push_bytes(b"RFC822.SIZE ");
                out.push_number(*n);
            }
            Self::Envelope(e) => {
                out.push_bytes(b"ENVELOPE ");
                e.encode(out);
            }
            Self::Body(b) => {
                out.push_bytes(b"BODY ");
                b.encode(out);
            }
            Self::BodyStructure(b) => {
                out.push_bytes(b"BODYSTRUCTURE ");
                b.encode(out);
            }
            Self::BodySection {
                section,
                origin,
                data,
            } => {
                out.push_bytes(b"BODY");
                section.encode(out);
                if let Some(o) = origin {
                    out.push_bytes(b"<");
                    out.push_number(u64::from(*o));
                    out.push_bytes(b">");
                }
                out.push_sp();
                data.encode(out);
            }
            Self::Rfc822(data) => {
                out.push_bytes(b"RFC822 ");
                data.encode(out);
            }
            Self::Rfc822Header(data) => {
                out.push_bytes(b"RFC822.HEADER ");
                data.encode(out);
            }
            Self::Rfc822Text(data) => {
                out.push_bytes(b"RFC822.TEXT ");
                data.encode(out);
            }
            Self::Binary { section, data } => {
                out.push_bytes(b"BINARY[");
                encode_part(section, out);
                out.push_bytes(b"] ");
                data.encode(out);
            }
            Self::BinarySize { section, size } => {
                out.push_bytes(b"BINARY.SIZE[");
                encode_part(section, out);
                out.push_bytes(b"] ");
                out.push_number(u64::from(*size));
            }
            Self::Uid(n) => {
                out.push_bytes(b"UID ");
                out.push_number(u64::from(n.get()));
            }
            Self::ModSeq(m) => {
                out.push_bytes(b"MODSEQ (");
                m.encode(out);
                out.push_bytes(b")");
            }
            Self::EmailId(id) => {
                out.push_bytes(b"EMAILID (");
                out.push_bytes(id.as_bytes());
                out.push_bytes(b")");
            }
            Self::GmailMessageId(n) => {
                out.push_bytes(b"X-GM-MSGID ");
                out.push_number(*n);
            }
            Self::GmailThreadId(n) => {
                out.push_bytes(b"X-GM-THRID ");
                out.push_number(*n);
            }
            Self::GmailLabels(labels) => {
                out.push_bytes(b"X-GM-LABELS ");
                paren_list(labels, out);
            }
            Self::ThreadId(id) => match id {
                Some(id) => {
                    out.push_bytes(b"THREADID (");
                    out.push_bytes(id.as_bytes());
                    out.push_bytes(b")");
                }
                None => out.push_bytes(b"THREADID NIL"),
            },
        }
    }
}

#[allow(dead_code)]
fn unused_join<T: Encode>(items: &[T], out: &mut Encoder) {
    join(items, out);
}

impl Encode for GmailLabel<'_> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Self::System(a) => {
                out.push_bytes(b"\\");
                a.encode(out);
            }
            Self::Name(a) => a.encode(out),
        }
    }
}

impl Encode for Thread {
    /// Writes one `thread-list`: the chain, then the branches back to back.
    fn encode(&self, out: &mut Encoder) {
        out.push_bytes(b"(");
        for (i, n) in self.members.iter().enumerate() {
            if i > 0 {
                out.push_sp();
            }
            out.push_number(u64::from(n.get()));
        }
        if !self.branches.is_empty() {
            if !self.members.is_empty() {
                out.push_sp();
            }
            for b in &self.branches {
                b.encode(out);
            }
        }
        out.push_bytes(b")");
    }
}
