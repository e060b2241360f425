//! PuTTY's private key file, version 3, unencrypted: what `puttygen` writes with an empty
//! passphrase (PuTTY's `sshpubk.c`, `ppk_save_sb`; format described in the PuTTY manual's
//! appendix "PuTTY key file formats").
//!
//! ```text
//! PuTTY-User-Key-File-3: <algorithm>
//! Encryption: none
//! Comment: <comment>
//! Public-Lines: <n>
//! <base64 of the SSH public blob, 64 characters a line>
//! Private-Lines: <n>
//! <base64 of the private blob, 64 characters a line>
//! Private-MAC: <hex HMAC-SHA-256>
//! ```
//!
//! Every line ends with a bare `\n`, as puttygen writes on every platform. Unencrypted files
//! have no `Key-Derivation` lines and no padding of the private blob, and their MAC key is
//! empty (the key comes from Argon2 of the passphrase only when there is one).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::put_string;

/// The whole unencrypted PPK v3 file.
pub(crate) fn write(
    algorithm: &str,
    comment: &str,
    public_blob: &[u8],
    private_blob: &[u8],
) -> String {
    let mut out = String::new();
    out.push_str(&format!("PuTTY-User-Key-File-3: {algorithm}\n"));
    out.push_str("Encryption: none\n");
    out.push_str(&format!("Comment: {comment}\n"));
    push_lines(&mut out, "Public-Lines", public_blob);
    push_lines(&mut out, "Private-Lines", private_blob);
    out.push_str("Private-MAC: ");
    for byte in mac(algorithm, "none", comment, public_blob, private_blob) {
        out.push_str(&format!("{byte:02x}"));
    }
    out.push('\n');
    out
}

/// `<label>: <n>` then the base64 of `blob` in lines of 64 characters (48 bytes).
fn push_lines(out: &mut String, label: &str, blob: &[u8]) {
    let encoded = STANDARD.encode(blob);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    out.push_str(&format!("{label}: {}\n", lines.len()));
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
}

/// The v3 `Private-MAC`: HMAC-SHA-256 keyed with the empty string (no passphrase) over the SSH
/// strings algorithm, encryption, comment, public blob and (unpadded, unencrypted) private blob.
pub(crate) fn mac(
    algorithm: &str,
    encryption: &str,
    comment: &str,
    public_blob: &[u8],
    private_blob: &[u8],
) -> [u8; 32] {
    let mut data = Vec::new();
    put_string(&mut data, algorithm.as_bytes());
    put_string(&mut data, encryption.as_bytes());
    put_string(&mut data, comment.as_bytes());
    put_string(&mut data, public_blob);
    put_string(&mut data, private_blob);
    let mut hmac = Hmac::<Sha256>::new_from_slice(&[]).expect("HMAC takes a key of any length");
    hmac.update(&data);
    hmac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A vector worked by hand from the format description: the MAC input is
    /// string("ssh-ed25519") string("none") string("kumori") string(public) string(private),
    /// with public = string("ssh-ed25519") string(00 01 .. 1f) and private = string(20 .. 3f),
    /// and the expected value was computed with Python's `hmac.new(b"", data, sha256)`.
    #[test]
    fn mac_matches_a_vector_worked_from_the_spec() {
        let mut public = Vec::new();
        put_string(&mut public, b"ssh-ed25519");
        put_string(&mut public, &(0u8..32).collect::<Vec<_>>());
        let mut private = Vec::new();
        put_string(&mut private, &(32u8..64).collect::<Vec<_>>());
        assert_eq!(
            hex(&mac("ssh-ed25519", "none", "kumori", &public, &private)),
            "551436dec06a5a3bc38a513853e25d1431d5e06429859011cc437fb7a2aecfac"
        );
    }

    #[test]
    fn lines_are_64_characters_and_counted() {
        let text = write("ssh-test", "c", &[7u8; 49], &[]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[3], "Public-Lines: 2");
        assert_eq!(lines[4].len(), 64);
        assert_eq!(lines[5], "Bw==");
        assert_eq!(lines[6], "Private-Lines: 0");
        assert!(lines[7].starts_with("Private-MAC: "));
        assert!(text.ends_with('\n') && !text.contains('\r'));
    }
}
