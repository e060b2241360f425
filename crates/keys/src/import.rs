//! Reading `ImportKeyPair`'s material: the public key formats EC2 accepts.
//!
//! - OpenSSH one-line public keys (`ssh-rsa AAAA… comment`, `ssh-ed25519 …`), as in
//!   `~/.ssh/id_*.pub` and `authorized_keys`;
//! - RFC 4716 SSH2 public key files (`---- BEGIN SSH2 PUBLIC KEY ----`, `ssh-keygen -e`);
//! - RSA only: PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`) and PKCS#1
//!   (`-----BEGIN RSA PUBLIC KEY-----`), and "Base64 encoded DER" (of either; raw DER bytes too).
//!
//! RSA keys must be 1024, 2048, 3072 or 4096 bits. ECDSA, DSA, security-key and certificate
//! types are recognised and refused as [`KeyError::Unsupported`]; anything else, private keys
//! included, is a [`KeyError::Format`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::der::Decode as _;
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::pkcs8::{ObjectIdentifier, der};
use rsa::{BigUint, RsaPublicKey};

use crate::{
    Imported, KeyError, KeyType, NOT_OPENSSH, ed25519_fingerprint, ed25519_public_blob,
    imported_rsa_fingerprint, openssh_line, rsa_public_blob, wire,
};

/// The RSA sizes, in bits, that EC2 imports.
const RSA_SIZES: [usize; 4] = [1024, 2048, 3072, 4096];

const RFC4716_BEGIN: &str = "---- BEGIN SSH2 PUBLIC KEY ----";
const RFC4716_END: &str = "---- END SSH2 PUBLIC KEY ----";

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Reads a public key for `ImportKeyPair`.
///
/// `material` is what ImportKeyPair received (already base64-decoded by the protocol layer,
/// i.e. the raw bytes of the user's public key file).
pub fn import(material: &[u8]) -> Result<Imported, KeyError> {
    // Binary DER (a SEQUENCE). No text format we read starts with '0'.
    if material.first() == Some(&0x30) {
        return der_public_key(material);
    }
    let text = std::str::from_utf8(material)
        .map_err(|_| format_error())?
        .trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text.starts_with(RFC4716_BEGIN) {
        rfc4716(text)
    } else if text.starts_with("-----BEGIN ") {
        pem(text)
    } else if text.split_whitespace().next().is_some_and(is_ssh_key_type) {
        openssh(text)
    } else {
        let compact: String = text.split_whitespace().collect();
        let der = STANDARD.decode(compact).map_err(|_| format_error())?;
        der_public_key(&der)
    }
}

fn format_error() -> KeyError {
    KeyError::Format(NOT_OPENSSH.into())
}

/// Whether `word` names an SSH public key type (supported or not), so that the line is meant
/// as an OpenSSH public key.
fn is_ssh_key_type(word: &str) -> bool {
    word.starts_with("ssh-")
        || word.starts_with("ecdsa-sha2-")
        || word.starts_with("sk-")
        || word.ends_with("@openssh.com")
}

/// `<type> <base64 blob> [comment]` on one line.
fn openssh(text: &str) -> Result<Imported, KeyError> {
    if text.contains(['\n', '\r']) {
        return Err(format_error());
    }
    let (key_type, rest) = split_word(text);
    let (encoded, comment) = split_word(rest);
    let blob = STANDARD.decode(encoded).map_err(|_| format_error())?;
    let key = ssh_public_blob(&blob)?;
    if key.algorithm() != key_type {
        return Err(format_error());
    }
    key.imported(comment)
}

/// The first whitespace-separated word and the trimmed rest.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

/// An RFC 4716 file: BEGIN line, headers (`Tag: value`, a trailing `\` continuing the value on
/// the next line), the base64 body, END line.
fn rfc4716(text: &str) -> Result<Imported, KeyError> {
    let mut lines = text.lines().map(str::trim).skip(1);
    let mut comment = String::new();
    let mut body = String::new();
    let mut in_headers = true;
    let mut ended = false;
    while let Some(line) = lines.next() {
        if line == RFC4716_END {
            ended = true;
            break;
        }
        if line.is_empty() {
            continue;
        }
        if in_headers && line.contains(':') {
            let mut header = line.to_owned();
            while header.ends_with('\\') {
                header.pop();
                header.push_str(lines.next().ok_or_else(format_error)?);
            }
            let (tag, value) = header.split_once(':').ok_or_else(format_error)?;
            if tag.trim().eq_ignore_ascii_case("Comment") {
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                comment = value.to_owned();
            }
            continue;
        }
        in_headers = false;
        body.push_str(line);
    }
    if !ended || lines.any(|l| !l.is_empty()) {
        return Err(format_error());
    }
    let blob = STANDARD.decode(body).map_err(|_| format_error())?;
    ssh_public_blob(&blob)?.imported(&comment)
}

/// PEM: `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1).
fn pem(text: &str) -> Result<Imported, KeyError> {
    let (label, der) = der::pem::decode_vec(text.as_bytes()).map_err(|_| format_error())?;
    match label {
        "PUBLIC KEY" => spki(&der),
        "RSA PUBLIC KEY" => pkcs1(&der),
        _ => Err(format_error()),
    }
}

/// DER: SubjectPublicKeyInfo, else PKCS#1 RSAPublicKey.
fn der_public_key(der: &[u8]) -> Result<Imported, KeyError> {
    if SubjectPublicKeyInfoRef::from_der(der).is_ok() {
        spki(der)
    } else {
        pkcs1(der)
    }
}

fn spki(der: &[u8]) -> Result<Imported, KeyError> {
    let info = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| format_error())?;
    match info.algorithm.oid {
        OID_RSA => pkcs1(
            info.subject_public_key
                .as_bytes()
                .ok_or_else(format_error)?,
        ),
        OID_EC => Err(ecdsa_unsupported()),
        OID_DSA => Err(dsa_unsupported()),
        OID_ED25519 => Err(KeyError::Unsupported(
            "ED25519 keys must be imported in OpenSSH or RFC 4716 format".into(),
        )),
        _ => Err(format_error()),
    }
}

fn pkcs1(der: &[u8]) -> Result<Imported, KeyError> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(der).map_err(|_| format_error())?;
    let rsa = rsa_key(key.modulus.as_bytes(), key.public_exponent.as_bytes())?;
    PublicKey::Rsa(rsa).imported("")
}

fn ecdsa_unsupported() -> KeyError {
    KeyError::Unsupported("ECDSA keys are not supported: import an RSA or ED25519 key".into())
}

fn dsa_unsupported() -> KeyError {
    KeyError::Unsupported("DSA keys are not supported: import an RSA or ED25519 key".into())
}

/// A public key EC2 accepts.
enum PublicKey {
    Rsa(RsaPublicKey),
    Ed25519([u8; 32]),
}

impl PublicKey {
    fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Rsa(_) => "ssh-rsa",
            PublicKey::Ed25519(_) => "ssh-ed25519",
        }
    }

    fn imported(&self, comment: &str) -> Result<Imported, KeyError> {
        Ok(match self {
            PublicKey::Rsa(key) => Imported {
                key_type: KeyType::Rsa,
                public_openssh: openssh_line("ssh-rsa", &rsa_public_blob(key), comment),
                fingerprint: imported_rsa_fingerprint(key)?,
            },
            PublicKey::Ed25519(key) => {
                let blob = ed25519_public_blob(key);
                Imported {
                    key_type: KeyType::Ed25519,
                    public_openssh: openssh_line("ssh-ed25519", &blob, comment),
                    fingerprint: ed25519_fingerprint(&blob),
                }
            }
        })
    }
}

/// An SSH public key blob: string type, then the type's fields, and nothing after.
fn ssh_public_blob(blob: &[u8]) -> Result<PublicKey, KeyError> {
    let mut r = wire::Reader::new(blob);
    let key_type = r.string().ok_or_else(format_error)?;
    let key = match key_type {
        b"ssh-rsa" => {
            let e = r.positive_mpint().ok_or_else(format_error)?;
            let n = r.positive_mpint().ok_or_else(format_error)?;
            PublicKey::Rsa(rsa_key(n, e)?)
        }
        b"ssh-ed25519" => {
            let key = r.string().ok_or_else(format_error)?;
            PublicKey::Ed25519(key.try_into().map_err(|_| format_error())?)
        }
        _ => {
            let name = String::from_utf8_lossy(key_type);
            return Err(if name.contains("-cert-") {
                KeyError::Unsupported(format!(
                    "OpenSSH certificates ({name}) are not supported: import the plain public key"
                ))
            } else if name.starts_with("ecdsa-") || name.starts_with("sk-ecdsa-") {
                ecdsa_unsupported()
            } else if name == "ssh-dss" {
                dsa_unsupported()
            } else if name.starts_with("sk-") {
                KeyError::Unsupported(format!(
                    "Security key types ({name}) are not supported: import an RSA or ED25519 key"
                ))
            } else {
                format_error()
            });
        }
    };
    if !r.is_empty() {
        return Err(format_error());
    }
    Ok(key)
}

/// An RSA public key of a size EC2 imports, from big-endian modulus and exponent.
fn rsa_key(n: &[u8], e: &[u8]) -> Result<RsaPublicKey, KeyError> {
    let n = BigUint::from_bytes_be(n);
    let bits = n.bits();
    if !RSA_SIZES.contains(&bits) {
        return Err(KeyError::Unsupported(format!(
            "RSA keys of {bits} bits are not supported: the key length must be 1024, 2048, 3072 or 4096 bits"
        )));
    }
    RsaPublicKey::new(n, BigUint::from_bytes_be(e)).map_err(|_| format_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    // An RSA-1024 key (from `ssh-keygen -t rsa -b 1024`) in the forms `ssh-keygen -e` writes.
    const RSA_OPENSSH: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCeQMbJF0nu0wc2mKPDBtW+6niHZX3bJnty7WBW7n3wNNrnmlTbAiBg4dQkDP3vNKCSj+Y+j4st6PogHYR93k1unetFkNS2T762ogMPq/eb92PpYEy1Uo2fBdZQlSIjkAnRJn5m6aPR5pyBZMxJayPdW2iYjz5350cmtF7mHGfuCQ==";
    const ED25519_OPENSSH: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFGz2tv5ewHOP5X5VKIqKNfhpMyAyDEH1zDYyl1vCg48";

    fn is_format(r: Result<Imported, KeyError>) -> bool {
        matches!(r, Err(KeyError::Format(m)) if m == NOT_OPENSSH)
    }

    fn is_unsupported(r: Result<Imported, KeyError>) -> bool {
        matches!(r, Err(KeyError::Unsupported(_)))
    }

    #[test]
    fn openssh_lines_keep_the_comment_and_tolerate_whitespace() {
        let k = import(format!("  {ED25519_OPENSSH}  me@host  x\r\n").as_bytes()).unwrap();
        assert_eq!(k.public_openssh, format!("{ED25519_OPENSSH} me@host  x"));
        assert_eq!(
            k.fingerprint,
            "KUBWgw+WyqUYOTINU/EH33D1BBYKjRtdIrtwEAzExj8="
        );
        let k = import(RSA_OPENSSH.as_bytes()).unwrap();
        assert_eq!(k.key_type, KeyType::Rsa);
        assert_eq!(k.public_openssh, RSA_OPENSSH);
    }

    #[test]
    fn rfc4716_headers_continuations_and_crlf() {
        let body = STANDARD.encode(STANDARD.decode(&ED25519_OPENSSH[12..]).unwrap());
        let file = format!(
            "{RFC4716_BEGIN}\r\nx-Tag: 1\r\nComment: \"long \\\r\ncomment\"\r\n{}\r\n{}\r\n{RFC4716_END}\r\n",
            &body[..40],
            &body[40..]
        );
        let k = import(file.as_bytes()).unwrap();
        assert_eq!(k.public_openssh, format!("{ED25519_OPENSSH} long comment"));
        // No END line, or text after it.
        assert!(is_format(import(file.replace(RFC4716_END, "").as_bytes())));
        assert!(is_format(import(format!("{file}ssh-rsa").as_bytes())));
    }

    #[test]
    fn garbage_and_private_keys_are_format_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"   \n",
            b"hello world",
            b"ssh-rsa",
            b"ssh-rsa !!!notbase64",
            b"ssh-rsa AAAA",
            b"ssh-foo AAAAB3NzaC1mb28=",
            b"AAAAB3NzaC1yc2EAAAADAQAB",
            b"\xff\xfe\x00garbage",
            b"0\x03\x02\x01\x00",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            b"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
        ];
        for case in cases {
            assert!(is_format(import(case)), "{}", String::from_utf8_lossy(case));
        }
        // The key type named on the line must be the blob's.
        let lying = format!("ssh-ed25519{}", &RSA_OPENSSH[7..]);
        assert!(is_format(import(lying.as_bytes())));
        // Two keys.
        assert!(is_format(import(
            format!("{RSA_OPENSSH}\n{ED25519_OPENSSH}").as_bytes()
        )));
        // Trailing bytes in the blob.
        let mut blob = STANDARD.decode(&ED25519_OPENSSH[12..]).unwrap();
        blob.push(0);
        assert!(is_format(import(
            format!("ssh-ed25519 {}", STANDARD.encode(&blob)).as_bytes()
        )));
        // A created private key is never taken as a public one.
        for key_type in [KeyType::Rsa, KeyType::Ed25519] {
            for format in [crate::KeyFormat::Pem, crate::KeyFormat::Ppk] {
                let created = crate::create(key_type, format, "k").unwrap();
                assert!(is_format(import(created.private_material.as_bytes())));
            }
        }
    }

    #[test]
    fn unsupported_types_and_sizes() {
        let line = |key_type: &str, fields: &[&[u8]]| {
            let mut blob = Vec::new();
            wire::put_string(&mut blob, key_type.as_bytes());
            for f in fields {
                wire::put_string(&mut blob, f);
            }
            format!("{key_type} {} c", STANDARD.encode(blob))
        };
        let p256 = line("ecdsa-sha2-nistp256", &[b"nistp256", &[4; 65]]);
        assert!(is_unsupported(import(p256.as_bytes())));
        assert!(is_unsupported(import(
            line("ssh-dss", &[b"\x01".as_slice(); 4]).as_bytes()
        )));
        assert!(is_unsupported(import(
            line("ssh-ed25519-cert-v01@openssh.com", &[b"x"]).as_bytes()
        )));
        assert!(is_unsupported(import(
            line("sk-ssh-ed25519@openssh.com", &[&[1; 32], b"ssh:"]).as_bytes()
        )));
        // RSA moduli of 8192 and 2047 bits (any odd number parses; no primes needed).
        for bits in [8192usize, 2047, 512] {
            let mut n = vec![0u8; bits.div_ceil(8)];
            n[0] = 1 << ((bits - 1) % 8);
            *n.last_mut().unwrap() |= 1;
            let mut n_mpint = Vec::new();
            wire::put_mpint(&mut n_mpint, &n);
            let mut blob = Vec::new();
            wire::put_string(&mut blob, b"ssh-rsa");
            wire::put_mpint(&mut blob, &[1, 0, 1]);
            blob.extend_from_slice(&n_mpint);
            let text = format!("ssh-rsa {}", STANDARD.encode(blob));
            match import(text.as_bytes()) {
                Err(KeyError::Unsupported(m)) => {
                    assert!(m.contains(&format!("{bits} bits")), "{m}")
                }
                other => panic!("{bits}: {other:?}"),
            }
        }
    }
}
