//! Reading and safely rewriting `policy.toml`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cas_policy::{ConfigError, Policy, PolicyConfig};

use super::AdminError;

/// The policy in `path`; Exchange's defaults when the file does not exist (data directories
/// made before policies existed keep working).
pub fn load(path: &Path) -> Result<PolicyConfig, AdminError> {
    match fs::read_to_string(path) {
        Ok(text) => PolicyConfig::from_toml_str(&text).map_err(|e| in_file(path, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PolicyConfig::default()),
        Err(e) => Err(AdminError::io(path, e)),
    }
}

fn in_file(path: &Path, e: ConfigError) -> AdminError {
    AdminError::Failed(format!("{}: {e}", path.display()))
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Loads the policy, lets `edit` change it, checks the result compiles into a [`Policy`], and
/// replaces the file atomically. An exclusive lock on `<file>.lock` serialises concurrent
/// admin commands (load-modify-write would otherwise lose one of two changes). On any error
/// the file is untouched. Returns the new configuration.
pub fn update(
    path: &Path,
    edit: impl FnOnce(&mut PolicyConfig) -> Result<(), ConfigError>,
) -> Result<PolicyConfig, AdminError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| AdminError::io(dir, e))?;
    }
    let lock_file = lock_path(path);
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .map_err(|e| AdminError::io(&lock_file, e))?;
    lock.lock().map_err(|e| AdminError::io(&lock_file, e))?;
    let mut config = load(path)?;
    edit(&mut config)?;
    let text = config.to_toml_string();
    // Belt and braces: what is written must load again and compile, exactly as the server
    // will load it.
    let reread = PolicyConfig::from_toml_str(&text).map_err(|e| {
        AdminError::Failed(format!(
            "internal error: the new policy does not load again: {e}"
        ))
    })?;
    Policy::new(reread)?;
    let mut contents = String::from(HEADER);
    contents.push_str(&text);
    crate::fsutil::replace_file(path, contents.as_bytes(), false)
        .map_err(|e| AdminError::io(path, e))?;
    drop(lock);
    Ok(config)
}

/// Written at the top of the file on every edit.
const HEADER: &str = "# cas-server client access policy, in Exchange's vocabulary (Set-CASMailbox,\n\
# Set-PopSettings, Set-ImapSettings, Enable-OutlookAnywhere, client access rules).\n\
# Edit with `cas-server set-casmailbox ...` etc. (see `cas-server --help`) or by hand;\n\
# the server reloads this file within ~2 s of a change, or at once on SIGHUP.\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_defaults_and_update_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        assert_eq!(load(&path).unwrap(), PolicyConfig::default());
        let change = cas_policy::PopSettingsChange {
            max_command_size: Some(100),
            ..Default::default()
        };
        let c = update(&path, |c| c.set_pop_settings(&change)).unwrap();
        assert_eq!(c.pop.max_command_size, 100);
        assert_eq!(load(&path).unwrap().pop.max_command_size, 100);
        // A refused change leaves the file as it was and names the key and range.
        let before = fs::read(&path).unwrap();
        let bad = cas_policy::PopSettingsChange {
            max_command_size: Some(2000),
            ..Default::default()
        };
        let err = update(&path, |c| c.set_pop_settings(&bad))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MaxCommandSize") && err.contains("40..=1024"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
    }
}
