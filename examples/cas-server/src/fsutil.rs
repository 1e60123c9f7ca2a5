//! Crash-safe file replacement, shared by the admin commands and the port file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces `path` with `data` so that a reader (the running server polling the file, or a
/// crash at any point) sees either the old or the new content, never a mix: the bytes go to a
/// temporary file in the same directory, which is flushed to disk (`fsync`) and then renamed
/// over `path`; finally the directory itself is synced so the rename survives a power cut.
///
/// The new file keeps the permission bits of the file it replaces; a new file gets `0600`
/// when `private`, else the process umask's default.
pub fn replace_file(path: &Path, data: &[u8], private: bool) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = write_synced(&tmp, path, data, private).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path);
    Ok(())
}

/// `.<name>.tmp.<pid>` next to `path`: same file system, so the rename is atomic.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

fn write_synced(tmp: &Path, target: &Path, data: &[u8], private: bool) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mode = match fs::metadata(target) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(_) if private => 0o600,
            Err(_) => 0o666,
        };
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = (target, private);
    let mut file = options.open(tmp)?;
    file.write_all(data)?;
    file.sync_all()
}

/// Best effort: not every file system supports syncing a directory.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        replace_file(&path, b"one\n", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        }
        replace_file(&path, b"two\n", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failure_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("f");
        assert!(replace_file(&path, b"x", false).is_err());
    }
}
