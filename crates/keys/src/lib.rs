//! kumori's SSH key pairs, as EC2's `CreateKeyPair` and `ImportKeyPair` make and read them:
//! generation, the private key files AWS hands out (PKCS#1 PEM, OpenSSH, PuTTY PPK v3), the
//! public key formats AWS accepts, and AWS's fingerprints. Pure functions: no I/O, no async
//! (RSA generation takes a fifth of a second, so callers run [`create`] off async threads).
//!
//! Fingerprints, as AWS computes them:
//! - created RSA: SHA-1 of the private key's PKCS#8 DER, lowercase hex with colons
//!   (`openssl pkcs8 -topk8 -nocrypt -outform DER | openssl sha1 -c`);
//! - imported RSA: MD5 of the public key's DER SubjectPublicKeyInfo, lowercase hex with colons
//!   (`openssl pkey -pubin -outform DER | openssl md5 -c`);
//! - ED25519 (created or imported): base64 of SHA-256 of the SSH public key blob, with `=`
//!   padding (the digest `ssh-keygen -l` prints unpadded after `SHA256:`).

mod import;
mod ppk;
mod wire;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::{OsRng, RngCore as _};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Digest as _;

pub use import::import;

/// The key algorithms EC2 makes and imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA: 2048 bits when created; 1024, 2048, 3072 or 4096 bits when imported.
    Rsa,
    /// Ed25519.
    Ed25519,
}

/// The file format of a created key's private material (`CreateKeyPair`'s `KeyFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// RSA: unencrypted PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`); Ed25519: unencrypted
    /// OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    Pem,
    /// An unencrypted PuTTY private key file, version 3 (`PuTTY-User-Key-File-3`).
    Ppk,
}

/// A newly made key pair.
#[derive(Debug)]
pub struct Created {
    /// The algorithm.
    pub key_type: KeyType,
    /// The private key file handed to the user (`KeyMaterial`), in the requested format. It is
    /// returned once and never kept: nothing else in this crate yields private keys.
    pub private_material: String,
    /// The public key in OpenSSH one-line form, commented with the key pair's name.
    pub public_openssh: String,
    /// AWS's `KeyFingerprint` (see the crate documentation).
    pub fingerprint: String,
}

/// A public key read from `ImportKeyPair`'s material.
#[derive(Debug)]
pub struct Imported {
    /// The algorithm.
    pub key_type: KeyType,
    /// The public key in OpenSSH one-line form, with the user's comment when the input had
    /// one.
    pub public_openssh: String,
    /// AWS's `KeyFingerprint` (see the crate documentation).
    pub fingerprint: String,
}

/// Why a key could not be made or read. The message is meant for the API caller.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a key in any accepted format (or a key file that could not be written).
    #[error("{0}")]
    Format(String),
    /// A recognised key that EC2 does not accept (ECDSA, DSA, an RSA size it does not take).
    #[error("{0}")]
    Unsupported(String),
}

/// The message AWS gives for material it cannot read as a public key.
pub(crate) const NOT_OPENSSH: &str = "Key is not in valid OpenSSH public key format";

/// Makes a key pair: RSA-2048 or Ed25519, with its private key file in `format`.
///
/// `comment` is the key pair's name: used as the OpenSSH/PPK comment. It must not contain line
/// breaks or other control characters, which would break the files (a [`KeyError::Format`]).
pub fn create(key_type: KeyType, format: KeyFormat, comment: &str) -> Result<Created, KeyError> {
    if comment.chars().any(char::is_control) {
        return Err(KeyError::Format(
            "A key name used as a key comment must not contain control characters".into(),
        ));
    }
    match key_type {
        KeyType::Rsa => {
            let failed =
                |e: rsa::Error| KeyError::Format(format!("RSA key generation failed: {e}"));
            let key = RsaPrivateKey::new(&mut OsRng, 2048).map_err(failed)?;
            rsa_created(&openssl_layout(key).map_err(failed)?, format, comment)
        }
        KeyType::Ed25519 => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let created = ed25519_created(&seed, format, comment);
            seed.fill(0);
            created
        }
    }
}

/// The same key laid out as OpenSSL (and so, presumably, AWS) writes it: p > q and
/// d = e⁻¹ mod λ(n). The rsa crate answers the primes in either order and d mod φ(n) or
/// λ(n), and PuTTY swaps p and q when p < q. Without this, the key's PKCS#1/PKCS#8 bytes (and
/// so its SHA-1 fingerprint) would change on a trip through puttygen or OpenSSL.
fn openssl_layout(key: RsaPrivateKey) -> Result<RsaPrivateKey, rsa::Error> {
    let [p, q] = key.primes() else {
        return Err(rsa::Error::NprimesTooSmall);
    };
    let (p, q) = if p > q { (p, q) } else { (q, p) };
    RsaPrivateKey::from_p_q(p.clone(), q.clone(), key.e().clone())
}

/// The files and fingerprint of a given RSA private key.
fn rsa_created(key: &RsaPrivateKey, format: KeyFormat, comment: &str) -> Result<Created, KeyError> {
    let encoding_failed =
        |e: &dyn std::fmt::Display| KeyError::Format(format!("RSA key encoding failed: {e}"));
    let pkcs8 = key.to_pkcs8_der().map_err(|e| encoding_failed(&e))?;
    let fingerprint = colon_hex(&sha1::Sha1::digest(pkcs8.as_bytes()));
    let public_blob = rsa_public_blob(key);
    let private_material = match format {
        KeyFormat::Pem => key
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|e| encoding_failed(&e))?
            .to_string(),
        KeyFormat::Ppk => {
            let [p, q] = key.primes() else {
                return Err(KeyError::Format(
                    "multi-prime RSA keys cannot be written".into(),
                ));
            };
            // PuTTY's iqmp, like PKCS#1's coefficient, is q⁻¹ mod p.
            let iqmp = key
                .crt_coefficient()
                .ok_or_else(|| KeyError::Format("RSA key has no CRT coefficient".into()))?;
            let mut private_blob = Vec::new();
            wire::put_mpint(&mut private_blob, &key.d().to_bytes_be());
            wire::put_mpint(&mut private_blob, &p.to_bytes_be());
            wire::put_mpint(&mut private_blob, &q.to_bytes_be());
            wire::put_mpint(&mut private_blob, &iqmp.to_bytes_be());
            ppk::write("ssh-rsa", comment, &public_blob, &private_blob)
        }
    };
    Ok(Created {
        key_type: KeyType::Rsa,
        private_material,
        public_openssh: openssh_line("ssh-rsa", &public_blob, comment),
        fingerprint,
    })
}

/// The files and fingerprint of the Ed25519 key with this 32-byte private seed.
fn ed25519_created(seed: &[u8; 32], format: KeyFormat, comment: &str) -> Result<Created, KeyError> {
    let keypair = ssh_key::private::Ed25519Keypair::from_seed(seed);
    let public_blob = ed25519_public_blob(&keypair.public.0);
    let private_material = match format {
        KeyFormat::Pem => {
            let private = ssh_key::PrivateKey::new(keypair.into(), comment)
                .map_err(|e| KeyError::Format(format!("Ed25519 key encoding failed: {e}")))?;
            private
                .to_openssh(ssh_key::LineEnding::LF)
                .map_err(|e| KeyError::Format(format!("Ed25519 key encoding failed: {e}")))?
                .to_string()
        }
        KeyFormat::Ppk => {
            let mut private_blob = Vec::new();
            wire::put_string(&mut private_blob, seed);
            ppk::write("ssh-ed25519", comment, &public_blob, &private_blob)
        }
    };
    Ok(Created {
        key_type: KeyType::Ed25519,
        private_material,
        public_openssh: openssh_line("ssh-ed25519", &public_blob, comment),
        fingerprint: ed25519_fingerprint(&public_blob),
    })
}

/// The SSH public key blob of an RSA key: string "ssh-rsa", mpint e, mpint n (RFC 4253 § 6.6).
pub(crate) fn rsa_public_blob(key: &impl PublicKeyParts) -> Vec<u8> {
    let mut blob = Vec::new();
    wire::put_string(&mut blob, b"ssh-rsa");
    wire::put_mpint(&mut blob, &key.e().to_bytes_be());
    wire::put_mpint(&mut blob, &key.n().to_bytes_be());
    blob
}

/// The SSH public key blob of an Ed25519 key: string "ssh-ed25519", string key (RFC 8709).
pub(crate) fn ed25519_public_blob(public: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::new();
    wire::put_string(&mut blob, b"ssh-ed25519");
    wire::put_string(&mut blob, public);
    blob
}

/// `<algorithm> <base64 blob>[ <comment>]`.
pub(crate) fn openssh_line(algorithm: &str, blob: &[u8], comment: &str) -> String {
    let mut line = format!("{algorithm} {}", STANDARD.encode(blob));
    if !comment.is_empty() {
        line.push(' ');
        line.push_str(comment);
    }
    line
}

/// AWS's fingerprint of an imported RSA key: MD5 of its DER SubjectPublicKeyInfo.
pub(crate) fn imported_rsa_fingerprint(key: &RsaPublicKey) -> Result<String, KeyError> {
    let spki = key
        .to_public_key_der()
        .map_err(|e| KeyError::Format(format!("RSA key encoding failed: {e}")))?;
    Ok(colon_hex(&md5::Md5::digest(spki.as_bytes())))
}

/// AWS's fingerprint of an Ed25519 key: padded base64 of SHA-256 of the SSH public blob.
pub(crate) fn ed25519_fingerprint(public_blob: &[u8]) -> String {
    STANDARD.encode(sha2::Sha256::digest(public_blob))
}

/// `aa:bb:cc…`
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Encrypts `plaintext` for the holder of an RSA key pair, given its public key in OpenSSH
/// form, as EC2 encrypts a Windows instance's administrator password (PKCS#1 v1.5): the
/// holder decrypts it with the private key (`openssl pkeyutl -decrypt -inkey key.pem`).
pub fn encrypt_for(public_openssh: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut words = public_openssh.split_whitespace();
    if words.next() != Some("ssh-rsa") {
        return Err(KeyError::Unsupported(
            "Only RSA key pairs can decrypt a password: use an RSA key pair".into(),
        ));
    }
    let blob = words
        .next()
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| KeyError::Format("the stored public key is not valid".into()))?;
    let mut r = wire::Reader::new(&blob);
    let (Some(b"ssh-rsa"), Some(e), Some(n)) = (r.string(), r.positive_mpint(), r.positive_mpint())
    else {
        return Err(KeyError::Format(
            "the stored public key is not valid".into(),
        ));
    };
    let key = RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(e),
    )
    .map_err(|e| KeyError::Format(e.to_string()))?;
    key.encrypt(&mut OsRng, rsa::Pkcs1v15Encrypt, plaintext)
        .map_err(|e| KeyError::Format(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;

    /// Made by `puttygen -t ed25519 -C golden-ed --new-passphrase /dev/null` (PuTTY 0.78).
    const PUTTYGEN_ED25519: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: golden-ed
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIFGz2tv5ewHOP5X5VKIqKNfhpMyAyDEH1zDYyl1v
Cg48
Private-Lines: 1
AAAAIMEHA7fp85AbVW5FYBS+/I3CzP1d0BNuOqKMkqqIbfYj
Private-MAC: 082a059967fa76227d413a935c01fb887a865fa0607f39bfa760949f42f7c53f
";

    /// Made by `puttygen -t rsa -b 1024 -C golden-rsa --new-passphrase /dev/null` (PuTTY 0.78).
    const PUTTYGEN_RSA: &str = "PuTTY-User-Key-File-3: ssh-rsa
Encryption: none
Comment: golden-rsa
Public-Lines: 4
AAAAB3NzaC1yc2EAAAADAQABAAAAgQCeQMbJF0nu0wc2mKPDBtW+6niHZX3bJnty
7WBW7n3wNNrnmlTbAiBg4dQkDP3vNKCSj+Y+j4st6PogHYR93k1unetFkNS2T762
ogMPq/eb92PpYEy1Uo2fBdZQlSIjkAnRJn5m6aPR5pyBZMxJayPdW2iYjz5350cm
tF7mHGfuCQ==
Private-Lines: 8
AAAAgC0Q10sWtbgsIka66w+z15S5or8z+MY6zDbrQF8hJX4NHzWLLpT7owrT5Jyr
knjXLM7v6apxKDpXuTsCDOPnNXdSrottDHUVqv7ZzAA7d0+gMG/FRI8J7iY+YwoR
WhYkNqcTGajeIVQHbr8e9B8cR6w6VnqltPVirLWkZRMMrTKNAAAAQQDbx4CUkqzj
5B+VDLS+/BGwwWM5NFPb67y0OTefsEZLtHGGkST/pAQRg5awyyA4KeMvtDrU3KDI
01F/ctXV5NinAAAAQQC4VXpz8LF64vbIxvnwtMXiD6SmTU9yQQovzCP319fiwPOs
66AnEIXZVsXWBPIpPYpEd7y+NvIwBcp3A7EcRinPAAAAQCmlCdMkWzHn710jvFpA
9GA7RwIXVHkQDSpfAvtnXNWpWwFYSWRB26u1CivfHJHIAxmut/Fe0XM5WzVZlC2D
qVA=
Private-MAC: 90f70baad75aade1a8ceb38322d07448f7bcb2fcfaba18f87e91cfb88407f1b8
";

    /// The decoded public and private blobs of a PPK file.
    fn ppk_blobs(text: &str) -> (Vec<u8>, Vec<u8>) {
        let lines: Vec<&str> = text.lines().collect();
        let section = |label: &str| {
            let at = lines.iter().position(|l| l.starts_with(label)).unwrap();
            let n: usize = lines[at][label.len() + 2..].parse().unwrap();
            STANDARD.decode(lines[at + 1..at + 1 + n].concat()).unwrap()
        };
        (section("Public-Lines"), section("Private-Lines"))
    }

    #[test]
    fn ed25519_ppk_is_byte_identical_to_puttygen() {
        let (public, private) = ppk_blobs(PUTTYGEN_ED25519);
        let mut r = wire::Reader::new(&private);
        let seed: [u8; 32] = r.string().unwrap().try_into().unwrap();
        let created = ed25519_created(&seed, KeyFormat::Ppk, "golden-ed").unwrap();
        assert_eq!(created.private_material, PUTTYGEN_ED25519);
        assert_eq!(
            created.public_openssh,
            openssh_line("ssh-ed25519", &public, "golden-ed")
        );
        // `puttygen golden.ppk -l` printed SHA256:KUBWgw+WyqUYOTINU/EH33D1BBYKjRtdIrtwEAzExj8.
        assert_eq!(
            created.fingerprint,
            "KUBWgw+WyqUYOTINU/EH33D1BBYKjRtdIrtwEAzExj8="
        );
    }

    #[test]
    fn rsa_ppk_is_byte_identical_to_puttygen() {
        let (public, private) = ppk_blobs(PUTTYGEN_RSA);
        let mut r = wire::Reader::new(&public);
        assert_eq!(r.string().unwrap(), b"ssh-rsa");
        let e = BigUint::from_bytes_be(r.positive_mpint().unwrap());
        let n = BigUint::from_bytes_be(r.positive_mpint().unwrap());
        let mut r = wire::Reader::new(&private);
        let mut next = || BigUint::from_bytes_be(r.positive_mpint().unwrap());
        let (d, p, q, iqmp) = (next(), next(), next(), next());
        let key = RsaPrivateKey::from_components(n, e, d, vec![p, q]).unwrap();
        assert_eq!(key.crt_coefficient().unwrap(), iqmp);
        let created = rsa_created(&key, KeyFormat::Ppk, "golden-rsa").unwrap();
        assert_eq!(created.private_material, PUTTYGEN_RSA);
        assert_eq!(
            created.public_openssh,
            openssh_line("ssh-rsa", &public, "golden-rsa")
        );
    }

    #[test]
    fn created_rsa_pem_is_pkcs1_with_64_character_lines() {
        let created = create(KeyType::Rsa, KeyFormat::Pem, "my key").unwrap();
        let pem = &created.private_material;
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END RSA PRIVATE KEY-----\n"));
        let lines: Vec<&str> = pem.lines().collect();
        assert!(lines[1..lines.len() - 2].iter().all(|l| l.len() == 64));
        assert!(lines[lines.len() - 2].len() <= 64);
        assert!(
            created
                .public_openssh
                .starts_with("ssh-rsa AAAAB3NzaC1yc2E")
        );
        assert!(created.public_openssh.ends_with(" my key"));
        assert_eq!(created.fingerprint.len(), 20 * 3 - 1);
        // The public key reads back through import, with an MD5 fingerprint this time.
        let imported = import(created.public_openssh.as_bytes()).unwrap();
        assert_eq!(imported.key_type, KeyType::Rsa);
        assert_eq!(imported.public_openssh, created.public_openssh);
        assert_eq!(imported.fingerprint.len(), 16 * 3 - 1);
    }

    #[test]
    fn created_rsa_keys_have_openssls_layout() {
        for _ in 0..3 {
            let created = create(KeyType::Rsa, KeyFormat::Pem, "k").unwrap();
            let key = <RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_pem(
                &created.private_material,
            )
            .unwrap();
            let [p, q] = key.primes() else { panic!() };
            assert!(p > q);
            let one = BigUint::from(1u8);
            let (p1, q1) = (p - &one, q - &one);
            // λ = lcm(p-1, q-1) = (p-1)(q-1)/gcd; d < λ and e·d ≡ 1 (mod λ).
            let mut gcd = (p1.clone(), q1.clone());
            while gcd.1 != BigUint::from(0u8) {
                gcd = (gcd.1.clone(), &gcd.0 % &gcd.1);
            }
            let lambda = &p1 * &q1 / &gcd.0;
            assert!(key.d() < &lambda);
            assert_eq!((key.d() * key.e()) % &lambda, one);
        }
    }

    #[test]
    fn created_ed25519_reads_back_with_the_same_fingerprint() {
        for format in [KeyFormat::Pem, KeyFormat::Ppk] {
            let created = create(KeyType::Ed25519, format, "k").unwrap();
            let imported = import(created.public_openssh.as_bytes()).unwrap();
            assert_eq!(imported.key_type, KeyType::Ed25519);
            assert_eq!(imported.public_openssh, created.public_openssh);
            assert_eq!(imported.fingerprint, created.fingerprint);
            assert!(created.fingerprint.ends_with('='));
        }
        let pem = create(KeyType::Ed25519, KeyFormat::Pem, "k")
            .unwrap()
            .private_material;
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
    }

    #[test]
    fn control_characters_in_the_comment_are_refused() {
        assert!(matches!(
            create(KeyType::Ed25519, KeyFormat::Ppk, "a\nPrivate-MAC: 00"),
            Err(KeyError::Format(_))
        ));
    }
}
