//! Blobs: the bytes services keep beside the store's records — S3 objects and database
//! backups, when those services arrive. A record in the store names a blob by key; the bytes
//! live here, so that documents stay small and the database does not carry gigabytes.
//!
//! Where blobs live follows where the store lives:
//! - SQLite on disk: a directory beside the database (`<state-dir>/blobs`);
//! - `--ephemeral`: memory;
//! - PostgreSQL: nodes share the database, so a blob written through one node must be
//!   readable through every other: a directory every node mounts (`--blob-dir`). Without
//!   one, a shared deployment refuses to store blobs rather than keep them where only one
//!   node could read them. (An S3-compatible store, through the `object_store` crate, is the
//!   other shared place planned, with the S3 service.)
//!
//! A write lands whole or not at all: it goes to a temporary file that is renamed into place.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob storage failed at {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("bad blob key '{0}': use letters, digits and - _ . / (no empty, . or .. segments)")]
    Key(String),
    #[error("{0}")]
    Unconfigured(&'static str),
}

pub type Result<T> = std::result::Result<T, BlobError>;

/// Where this deployment keeps blobs.
#[derive(Debug)]
pub enum Blobs {
    Dir(PathBuf),
    Memory(Mutex<BTreeMap<String, Vec<u8>>>),
    /// Nodes share a database but were given no shared place for blobs.
    Unconfigured,
}

const UNCONFIGURED: &str = "this kumori keeps its state in PostgreSQL, shared by its nodes, \
     but has no shared place for blobs: start every node with the same --blob-dir";

/// Keys become paths: plain segments only, so no key reaches outside the directory.
fn check(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::Key(key.to_string()))
    }
}

impl Blobs {
    pub fn dir(path: impl Into<PathBuf>) -> Blobs {
        Blobs::Dir(path.into())
    }

    pub fn memory() -> Blobs {
        Blobs::Memory(Mutex::default())
    }

    /// Where blobs are, in words, for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Blobs::Dir(p) => p.display().to_string(),
            Blobs::Memory(_) => "memory".into(),
            Blobs::Unconfigured => "nowhere (no --blob-dir)".into(),
        }
    }

    /// Stores `bytes` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        check(key)?;
        match self {
            Blobs::Dir(root) => {
                let path = root.join(key);
                let parent = path.parent().unwrap_or(root);
                let io = |e| BlobError::Io(path.clone(), e);
                tokio::fs::create_dir_all(parent).await.map_err(io)?;
                let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
                let written = tokio::fs::write(&tmp, bytes).await;
                let renamed = match written {
                    Ok(()) => tokio::fs::rename(&tmp, &path).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = renamed {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(io(e));
                }
                Ok(())
            }
            Blobs::Memory(m) => {
                m.lock()
                    .expect("blobs poisoned")
                    .insert(key.into(), bytes.to_vec());
                Ok(())
            }
            Blobs::Unconfigured => Err(BlobError::Unconfigured(UNCONFIGURED)),
        }
    }

    /// The bytes under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check(key)?;
        match self {
            Blobs::Dir(root) => {
                let path = root.join(key);
                match tokio::fs::read(&path).await {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(BlobError::Io(path, e)),
                }
            }
            Blobs::Memory(m) => Ok(m.lock().expect("blobs poisoned").get(key).cloned()),
            Blobs::Unconfigured => Err(BlobError::Unconfigured(UNCONFIGURED)),
        }
    }

    /// Removes `key`; `false` if there was nothing.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        check(key)?;
        match self {
            Blobs::Dir(root) => {
                let path = root.join(key);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(BlobError::Io(path, e)),
                }
            }
            Blobs::Memory(m) => Ok(m.lock().expect("blobs poisoned").remove(key).is_some()),
            Blobs::Unconfigured => Err(BlobError::Unconfigured(UNCONFIGURED)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(b: &Blobs) {
        assert_eq!(b.get("db/snap-1").await.unwrap(), None);
        b.put("db/snap-1", b"first").await.unwrap();
        b.put("db/snap-1", b"second").await.unwrap();
        assert_eq!(
            b.get("db/snap-1").await.unwrap().as_deref(),
            Some(&b"second"[..])
        );
        assert!(b.delete("db/snap-1").await.unwrap());
        assert!(!b.delete("db/snap-1").await.unwrap());
        for bad in ["", "../x", "a//b", "a/./b", "/abs", "a b"] {
            assert!(
                matches!(b.put(bad, b"x").await, Err(BlobError::Key(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn blobs_round_trip_in_a_directory_and_in_memory() {
        let dir = std::env::temp_dir().join(format!("kumori-blobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let on_disk = Blobs::dir(&dir);
        round_trip(&on_disk).await;
        // Another node given the same directory sees what this one wrote.
        on_disk.put("shared/key", b"v").await.unwrap();
        let other = Blobs::dir(&dir);
        assert_eq!(
            other.get("shared/key").await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("shared"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key"]);
        std::fs::remove_dir_all(&dir).unwrap();
        round_trip(&Blobs::memory()).await;
    }

    #[tokio::test]
    async fn a_shared_deployment_without_a_shared_place_refuses_blobs() {
        let b = Blobs::Unconfigured;
        let err = b.put("k", b"v").await.unwrap_err().to_string();
        assert!(err.contains("--blob-dir"), "{err}");
        assert!(b.get("k").await.is_err());
    }
}
