//! Protocol logs (Exchange `ProtocolLogEnabled`): one CSV line per command or reply summary,
//! in size-rotated files under `<data-dir>/logs/<protocol>/`.
//!
//! The columns follow Exchange's SMTP/POP3 protocol logs:
//!
//! ```text
//! #Fields: date-time,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context
//! 2026-11-23T12:00:01.123Z,0000000000000001,0,127.0.0.1:1110,127.0.0.1:50000,+,,POP3
//! 2026-11-23T12:00:01.130Z,0000000000000001,1,127.0.0.1:1110,127.0.0.1:50000,<,USER alice,
//! 2026-11-23T12:00:01.130Z,0000000000000001,2,127.0.0.1:1110,127.0.0.1:50000,<,PASS ****,
//! ```
//!
//! Events: `+` connected, `-` disconnected, `<` received from the client, `>` sent to the
//! client, `*` information (policy decisions, TLS). The command and status lines are the
//! protocol crate's trace (`pop3_proto::Event::CommandTraced` / `ReplyTraced`, enabled for
//! the connections that log), which covers the commands the session answers itself (`STAT`,
//! `LIST`, `UIDL`, refusals, ...); the socket bytes are never parsed again, and **secrets
//! never reach the lines**: the protocol crate writes passwords, APOP digests, SASL initial
//! responses and continuation lines as `****`, and SASL challenges are logged as `+ ****`.
//!
//! Files: the current file is `<protocol>.log`; when a write would make it larger than
//! [`Rotation::max_file_size`] it is renamed to `<protocol>.log.1` (older ones shift up to
//! `.N`, the oldest beyond [`Rotation::max_files`] is deleted) and a new file with the header
//! is started. A write error is reported once in the server log and the line is dropped: a
//! full disk must not stop the mail service.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

/// Text that replaces secrets in the log.
pub const REDACTED: &str = "****";

/// When a new file is started regardless of size (Exchange `LogFileRollOverSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollOver {
    /// Size only.
    #[default]
    Never,
    /// At the start of every UTC hour.
    Hourly,
    /// At 00:00 UTC.
    Daily,
    /// Every 7 days (Monday 00:00 UTC).
    Weekly,
    /// On the first of the month, 00:00 UTC.
    Monthly,
}

impl RollOver {
    /// The period `t` falls in; a new period starts a new file.
    fn period(self, t: SystemTime) -> u64 {
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        match self {
            RollOver::Never => 0,
            RollOver::Hourly => secs / 3600,
            RollOver::Daily => secs / 86_400,
            // 1970-01-01 was a Thursday: shift so weeks start on Monday.
            RollOver::Weekly => (secs / 86_400 + 3) / 7,
            RollOver::Monthly => {
                let (y, m, _) = civil_from_days((secs / 86_400) as i64);
                (y as u64) * 12 + u64::from(m)
            }
        }
    }
}

/// Rotation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Largest size of one file in bytes before it is rotated. Default 10 MiB (Exchange's
    /// `LogPerFileSizeQuota` default is unlimited; a bound keeps the demo from filling disks).
    pub max_file_size: u64,
    /// Rotated files kept besides the current one. Default 10.
    pub max_files: u32,
    /// Time-based roll-over. Default none.
    pub roll_over: RollOver,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_file_size: 10 * 1024 * 1024,
            max_files: 10,
            roll_over: RollOver::Never,
        }
    }
}

/// What happened, in the `event` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEvent {
    /// `+`: a connection was accepted.
    Connected,
    /// `-`: the connection ended.
    Disconnected,
    /// `<`: a command from the client.
    Received,
    /// `>`: a reply to the client.
    Sent,
    /// `*`: information (a policy decision, TLS started).
    Info,
}

impl LogEvent {
    fn symbol(self) -> char {
        match self {
            LogEvent::Connected => '+',
            LogEvent::Disconnected => '-',
            LogEvent::Received => '<',
            LogEvent::Sent => '>',
            LogEvent::Info => '*',
        }
    }
}

struct Current {
    file: Option<fs::File>,
    size: u64,
    /// The roll-over period the open file belongs to.
    period: u64,
}

/// One protocol's rotating log, shared by all its sessions.
pub struct ProtocolLog {
    dir: PathBuf,
    base: String,
    log_type: String,
    rotation: Rotation,
    current: Mutex<Current>,
    failed: AtomicBool,
}

impl std::fmt::Debug for ProtocolLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolLog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

const FIELDS: &str =
    "date-time,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context";

impl ProtocolLog {
    /// A log writing `<dir>/<base>.log` (the directory is created on first write).
    /// `log_type` names it in the file header, e.g. `POP3 Protocol Log`.
    pub fn new(dir: impl Into<PathBuf>, base: &str, log_type: &str, rotation: Rotation) -> Self {
        Self {
            dir: dir.into(),
            base: base.to_owned(),
            log_type: log_type.to_owned(),
            rotation,
            current: Mutex::new(Current {
                file: None,
                size: 0,
                period: 0,
            }),
            failed: AtomicBool::new(false),
        }
    }

    /// The current file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.base))
    }

    fn rotated(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{}.log.{n}", self.base))
    }

    /// Appends one line; errors are reported once and otherwise ignored.
    pub fn write_line(&self, line: &str) {
        let mut current = match self.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        match self.append(&mut current, line) {
            Ok(()) => self.failed.store(false, Ordering::Relaxed),
            Err(e) => {
                current.file = None;
                if !self.failed.swap(true, Ordering::Relaxed) {
                    tracing::error!(dir = %self.dir.display(), error = %e, "protocol log write failed; lines are dropped until it works again");
                }
            }
        }
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The rotation settings.
    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    fn append(&self, current: &mut Current, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        let period = self.rotation.roll_over.period(SystemTime::now());
        if current.file.is_some()
            && (current.size + len > self.rotation.max_file_size || period != current.period)
        {
            current.file = None;
            self.rotate()?;
        }
        if current.file.is_none() {
            fs::create_dir_all(&self.dir)?;
            let path = self.path();
            let mut file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            let mut size = file.metadata()?.len();
            if size > 0 && size + len > self.rotation.max_file_size {
                drop(file);
                self.rotate()?;
                file = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                size = 0;
            }
            if size == 0 {
                let header = format!(
                    "#Software: cas-server {}\n#Version: 1.0\n#Log-type: {}\n#Date: {}\n#Fields: {FIELDS}\n",
                    env!("CARGO_PKG_VERSION"),
                    self.log_type,
                    format_time(SystemTime::now()),
                );
                file.write_all(header.as_bytes())?;
                size = header.len() as u64;
            }
            current.file = Some(file);
            current.size = size;
            current.period = period;
        }
        if let Some(file) = current.file.as_mut() {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            // One write per line: lines of concurrent sessions never interleave.
            file.write_all(&buf)?;
            current.size += len;
        }
        Ok(())
    }

    /// `.log` → `.log.1` → … → `.log.N`; the oldest falls off.
    fn rotate(&self) -> io::Result<()> {
        let max = self.rotation.max_files;
        if max == 0 {
            return remove_if_exists(&self.path());
        }
        remove_if_exists(&self.rotated(max))?;
        for n in (1..max).rev() {
            rename_if_exists(&self.rotated(n), &self.rotated(n + 1))?;
        }
        rename_if_exists(&self.path(), &self.rotated(1))
    }
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// One session's view of a protocol log: its id, endpoints and sequence counter.
#[derive(Debug)]
pub struct SessionLog {
    log: std::sync::Arc<ProtocolLog>,
    session_id: u64,
    local: String,
    remote: String,
    seq: u64,
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

impl SessionLog {
    /// A new session (fresh id) on `log`.
    pub fn new(log: std::sync::Arc<ProtocolLog>, local: String, remote: String) -> Self {
        Self {
            log,
            session_id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            local,
            remote,
            seq: 0,
        }
    }

    /// Writes one line: `data` and `context` are escaped as CSV fields.
    pub fn record(&mut self, event: LogEvent, data: &str, context: &str) {
        let line = format!(
            "{},{:016X},{},{},{},{},{},{}",
            format_time(SystemTime::now()),
            self.session_id,
            self.seq,
            csv_field(&self.local),
            csv_field(&self.remote),
            event.symbol(),
            csv_field(data),
            csv_field(context),
        );
        self.seq += 1;
        self.log.write_line(&line);
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break; control
/// characters become `?` so a line is always one line.
pub fn csv_field(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.contains([',', '"']) {
        format!("\"{}\"", clean.replace('"', "\"\""))
    } else {
        clean
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` in UTC.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_and_fields() {
        assert_eq!(
            format_time(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_763_900_000_123);
        assert_eq!(format_time(t), "2025-11-23T12:13:20.123Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_time(leap), "2000-02-29T00:00:00.000Z");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("x\r\ny"), "x??y");
    }

    #[test]
    fn roll_over_periods() {
        let t = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        // 2025-11-23 is a Sunday, 2025-11-24 a Monday.
        let sunday = t(1_763_856_000);
        let monday = t(1_763_942_400);
        assert_ne!(
            RollOver::Weekly.period(sunday),
            RollOver::Weekly.period(monday)
        );
        assert_eq!(
            RollOver::Weekly.period(monday),
            RollOver::Weekly.period(t(1_763_942_400 + 6 * 86_400))
        );
        assert_eq!(
            RollOver::Daily.period(monday),
            RollOver::Daily.period(t(1_763_942_400 + 86_399))
        );
        assert_ne!(
            RollOver::Hourly.period(monday),
            RollOver::Hourly.period(t(1_763_942_400 + 3600))
        );
        assert_ne!(
            RollOver::Monthly.period(t(1_764_460_800)),
            RollOver::Monthly.period(t(1_764_547_200))
        );
        assert_eq!(RollOver::Never.period(monday), 0);
    }

    #[test]
    fn rotates_and_bounds_the_file_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(ProtocolLog::new(
            dir.path().join("pop3"),
            "pop3",
            "POP3 Protocol Log",
            Rotation {
                max_file_size: 400,
                max_files: 2,
                roll_over: RollOver::Never,
            },
        ));
        let mut s = SessionLog::new(log.clone(), "127.0.0.1:110".into(), "127.0.0.1:5".into());
        for i in 0..100 {
            s.record(LogEvent::Received, &format!("NOOP {i}"), "");
        }
        let mut names: Vec<String> = fs::read_dir(dir.path().join("pop3"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["pop3.log", "pop3.log.1", "pop3.log.2"]);
        for name in &names {
            let text = fs::read_to_string(dir.path().join("pop3").join(name)).unwrap();
            assert!(text.len() <= 400, "{name} is {} bytes", text.len());
            assert!(text.starts_with("#Software: cas-server"));
            assert!(text.contains("#Fields: date-time,session-id"));
        }
        let last = fs::read_to_string(log.path()).unwrap();
        assert!(last.contains(",<,NOOP 99,"), "{last}");
    }
}
