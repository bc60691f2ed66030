//! `causeway keygen` and `causeway public-key`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use causeway_net::{Env, TokioEnv};
use causeway_wire::{Keypair, PrivateKey, PublicKey};

/// Writes a new private key (base64, one line) to `path`, mode 0600, never
/// over an existing file; returns the public key.
pub fn generate(path: &Path) -> Result<PublicKey, String> {
    let env = TokioEnv::new();
    let keys = Keypair::generate(env.rng());
    write_private(path, &keys)?;
    Ok(keys.public)
}

/// Writes `keys`' private half (base64, one line) to a new file at `path`,
/// mode 0600, never over an existing file.
pub fn write_private(path: &Path, keys: &Keypair) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} already exists; refusing to overwrite a key (move it away first if you mean to replace it)",
                    path.display()
                )
            } else {
                format!("cannot create {}: {e}", path.display())
            }
        })?;
    let line = format!("{}\n", keys.private.expose_base64());
    file.write_all(line.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The public key of the private key stored in `path`.
pub fn public_of(path: &Path) -> Result<PublicKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let private: PrivateKey = text
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Keypair::from_private(private).public)
}
