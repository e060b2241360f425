//! kumori-keys checked against the real tools: `openssl`, `ssh-keygen` and `puttygen`
//! (Debian's putty-tools). A test whose tool is missing prints `SKIPPED …` on stderr and
//! passes, unless `KUMORI_REQUIRE_ORACLES` is set (scripts/test sets it after installing
//! the tools): then a missing tool fails the test, so CI cannot pass without running them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use kumori_keys::{KeyError, KeyFormat, KeyType, create, import};

/// Whether `tool` runs here. If not, fails the test when the oracles are required, else
/// says loudly that `test` is skipped.
fn have(tool: &str, test: &str) -> bool {
    let probe = match tool {
        "openssl" => vec!["version"],
        "puttygen" => vec!["--version"],
        // ssh-keygen has no version flag; `-?` prints usage and fails, but it ran.
        _ => vec!["-?"],
    };
    let ran = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ran {
        let required =
            std::env::var("KUMORI_REQUIRE_ORACLES").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "{test}: `{tool}` is not installed but KUMORI_REQUIRE_ORACLES is set; \
             install it (Debian: apt-get install openssh-client openssl putty-tools)"
        );
        // Straight to the process's stderr: the harness captures `eprintln!` of a passing
        // test, and a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: `{tool}` not installed (set KUMORI_REQUIRE_ORACLES=1 to fail instead)"
        );
    }
    ran
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("kumori-keys-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes a private file (mode 0600: ssh-keygen refuses readable private keys).
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.0.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(contents.as_ref()).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command that must succeed; answers its stdout.
fn run(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = Command::new(program)
        .args(args.iter().map(|a| a.as_ref()))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {:?} failed: {}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `openssl <digest> -c FILE` → `aa:bb:…` (the line is `DIGEST(FILE)= aa:bb:…`).
fn openssl_digest(digest: &str, file: &Path) -> String {
    let out = run("openssl", &[&digest, &"-c", &file]);
    out.trim().rsplit(' ').next().unwrap().to_owned()
}

/// The SHA256 fingerprint `ssh-keygen -l` (or `puttygen -l`) printed, without `SHA256:`.
fn sha256_field(listing: &str) -> String {
    let field = listing
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no SHA256 fingerprint in {listing:?}"));
    field["SHA256:".len()..].to_owned()
}

/// `type base64` of an OpenSSH line, without its comment.
fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn created_rsa_pem_passes_openssl_and_its_fingerprint_is_the_pkcs8_sha1() {
    if !have("openssl", "created_rsa_pem") {
        return;
    }
    let created = create(KeyType::Rsa, KeyFormat::Pem, "my-key").unwrap();
    let dir = TempDir::new("rsa-pem");
    let pem = dir.write("k.pem", &created.private_material);
    let check = run("openssl", &[&"rsa", &"-check", &"-noout", &"-in", &pem]);
    assert!(check.contains("RSA key ok"), "{check}");
    let text = run("openssl", &[&"rsa", &"-in", &pem, &"-noout", &"-text"]);
    assert!(text.contains("Private-Key: (2048 bit, 2 primes)"), "{text}");
    // openssl pkcs8 -in k.pem -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c
    let der = dir.path("k.p8.der");
    run(
        "openssl",
        &[
            &"pkcs8",
            &"-in",
            &pem,
            &"-inform",
            &"PEM",
            &"-outform",
            &"DER",
            &"-topk8",
            &"-nocrypt",
            &"-out",
            &der,
        ],
    );
    assert_eq!(created.fingerprint, openssl_digest("sha1", &der));

    if have("ssh-keygen", "created_rsa_pem (public key)") {
        let public = run("ssh-keygen", &[&"-y", &"-f", &pem]);
        assert_eq!(key_part(&public), key_part(&created.public_openssh));
        assert!(created.public_openssh.ends_with(" my-key"));
    }
}

#[test]
fn created_ed25519_pem_is_read_by_ssh_keygen_with_the_same_fingerprint() {
    if !have("ssh-keygen", "created_ed25519_pem") {
        return;
    }
    let created = create(KeyType::Ed25519, KeyFormat::Pem, "my-ed-key").unwrap();
    assert!(
        created
            .private_material
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    );
    let dir = TempDir::new("ed-pem");
    let private = dir.write("k", &created.private_material);
    // The private file's public key, with the comment stored inside it.
    let public = run("ssh-keygen", &[&"-y", &"-f", &private]);
    assert_eq!(public.trim(), created.public_openssh);
    let listing = run("ssh-keygen", &[&"-l", &"-E", &"sha256", &"-f", &private]);
    assert!(listing.contains("my-ed-key"), "{listing}");
    assert_eq!(
        created.fingerprint.trim_end_matches('='),
        sha256_field(&listing)
    );
    assert_eq!(created.fingerprint.len(), 44, "padded base64 of 32 bytes");
}

#[test]
fn created_ppk_files_are_read_by_puttygen() {
    if !have("puttygen", "created_ppk") {
        return;
    }
    for key_type in [KeyType::Rsa, KeyType::Ed25519] {
        let created = create(key_type, KeyFormat::Ppk, "ppk key").unwrap();
        let dir = TempDir::new("ppk");
        let ppk = dir.write("k.ppk", &created.private_material);
        // puttygen checks the MAC on load, so reading it at all proves the MAC right.
        let public = run("puttygen", &[&ppk, &"-O", &"public-openssh"]);
        assert_eq!(public.trim(), created.public_openssh, "{key_type:?}");
        let listing = run("puttygen", &[&ppk, &"-l"]);
        // The private half, converted back to OpenSSH, is the same key.
        let converted = dir.path("out");
        run(
            "puttygen",
            &[&ppk, &"-O", &"private-openssh", &"-o", &converted],
        );
        match key_type {
            KeyType::Ed25519 => {
                assert_eq!(
                    created.fingerprint.trim_end_matches('='),
                    sha256_field(&listing)
                );
                if have("ssh-keygen", "created_ppk (ed25519 private half)") {
                    let public = run("ssh-keygen", &[&"-y", &"-f", &converted]);
                    assert_eq!(key_part(&public), key_part(&created.public_openssh));
                }
            }
            KeyType::Rsa => {
                assert!(listing.starts_with("ssh-rsa 2048 "), "{listing}");
                // PuTTY writes RSA as traditional PEM; its PKCS#8 SHA-1 is our fingerprint.
                if have("openssl", "created_ppk (rsa private half)") {
                    let check = run(
                        "openssl",
                        &[&"rsa", &"-check", &"-noout", &"-in", &converted],
                    );
                    assert!(check.contains("RSA key ok"), "{check}");
                    let der = dir.path("k.p8.der");
                    run(
                        "openssl",
                        &[
                            &"pkcs8",
                            &"-in",
                            &converted,
                            &"-outform",
                            &"DER",
                            &"-topk8",
                            &"-nocrypt",
                            &"-out",
                            &der,
                        ],
                    );
                    assert_eq!(created.fingerprint, openssl_digest("sha1", &der));
                }
            }
        }
    }
}

/// Every form `ssh-keygen -e` writes of the `.pub` file, imported: all the same key.
#[test]
fn imported_rsa_keys_in_every_form_have_the_openssl_md5_fingerprint() {
    if !have("ssh-keygen", "imported_rsa") || !have("openssl", "imported_rsa") {
        return;
    }
    for bits in ["4096", "1024", "3072"] {
        let dir = TempDir::new("import-rsa");
        let key = dir.path("k");
        let comment = format!("user@host rsa {bits}");
        run(
            "ssh-keygen",
            &[
                &"-q", &"-t", &"rsa", &"-b", &bits, &"-N", &"", &"-C", &comment, &"-f", &key,
            ],
        );
        let pub_path = dir.path("k.pub");
        let pub_line = std::fs::read_to_string(&pub_path).unwrap();
        // ssh-keygen -e -m PKCS8 -f k.pub | openssl pkey -pubin -outform DER | openssl md5 -c
        let spki_pem = run("ssh-keygen", &[&"-e", &"-m", &"PKCS8", &"-f", &pub_path]);
        let spki_pem_path = dir.write("spki.pem", &spki_pem);
        let spki_der = dir.path("spki.der");
        run(
            "openssl",
            &[
                &"pkey",
                &"-pubin",
                &"-in",
                &spki_pem_path,
                &"-outform",
                &"DER",
                &"-out",
                &spki_der,
            ],
        );
        let expected = openssl_digest("md5", &spki_der);
        // The same via `openssl rsa -pubin`.
        let rsa_der = dir.path("rsa.der");
        run(
            "openssl",
            &[
                &"rsa",
                &"-pubin",
                &"-in",
                &spki_pem_path,
                &"-outform",
                &"DER",
                &"-out",
                &rsa_der,
            ],
        );
        assert_eq!(openssl_digest("md5", &rsa_der), expected);

        let one_line = import(pub_line.as_bytes()).unwrap();
        assert_eq!(one_line.key_type, KeyType::Rsa);
        assert_eq!(one_line.fingerprint, expected, "{bits}-bit .pub");
        assert_eq!(one_line.public_openssh, pub_line.trim());

        let rfc4716 = run("ssh-keygen", &[&"-e", &"-f", &pub_path]);
        let pkcs1_pem = run("ssh-keygen", &[&"-e", &"-m", &"PEM", &"-f", &pub_path]);
        let openssl_b64 = run("openssl", &[&"base64", &"-in", &spki_der]);
        let raw_der = std::fs::read(&spki_der).unwrap();
        let forms: [(&str, &[u8]); 5] = [
            ("RFC 4716", rfc4716.as_bytes()),
            ("PKCS8 PEM", spki_pem.as_bytes()),
            ("PKCS#1 PEM", pkcs1_pem.as_bytes()),
            ("base64 DER", openssl_b64.as_bytes()),
            ("raw DER", &raw_der),
        ];
        for (form, material) in forms {
            let k = import(material).unwrap_or_else(|e| panic!("{bits} {form}: {e}"));
            assert_eq!(k.key_type, KeyType::Rsa);
            assert_eq!(k.fingerprint, expected, "{bits} {form}");
            assert_eq!(
                key_part(&k.public_openssh),
                key_part(&pub_line),
                "{bits} {form}"
            );
        }
        // RFC 4716 keeps the Comment header; PEM and DER have none.
        let k = import(rfc4716.as_bytes()).unwrap();
        let header = rfc4716
            .lines()
            .find_map(|l| l.strip_prefix("Comment: "))
            .unwrap();
        assert_eq!(
            k.public_openssh,
            format!("{} {}", key_part(&pub_line), header.trim_matches('"'))
        );
        assert_eq!(
            import(spki_pem.as_bytes()).unwrap().public_openssh,
            key_part(&pub_line)
        );
    }
}

#[test]
fn imported_ed25519_keys_have_the_ssh_keygen_fingerprint() {
    if !have("ssh-keygen", "imported_ed25519") {
        return;
    }
    let dir = TempDir::new("import-ed");
    let key = dir.path("k");
    run(
        "ssh-keygen",
        &[
            &"-q",
            &"-t",
            &"ed25519",
            &"-N",
            &"",
            &"-C",
            &"me@laptop",
            &"-f",
            &key,
        ],
    );
    let pub_path = dir.path("k.pub");
    let pub_line = std::fs::read_to_string(&pub_path).unwrap();
    let expected = sha256_field(&run("ssh-keygen", &[&"-l", &"-f", &pub_path]));

    let one_line = import(pub_line.as_bytes()).unwrap();
    assert_eq!(one_line.key_type, KeyType::Ed25519);
    assert_eq!(one_line.public_openssh, pub_line.trim());
    assert_eq!(one_line.fingerprint.trim_end_matches('='), expected);
    assert_eq!(one_line.fingerprint, format!("{expected}="));

    let rfc4716 = run("ssh-keygen", &[&"-e", &"-f", &pub_path]);
    let k = import(rfc4716.as_bytes()).unwrap();
    assert_eq!(k.fingerprint, one_line.fingerprint);
    assert_eq!(key_part(&k.public_openssh), key_part(&pub_line));
    // ssh-keygen has no PKCS8/PEM export for ED25519 ("unsupported key type"), so there are
    // no such forms to try.
}

#[test]
fn ecdsa_and_dsa_keys_are_refused() {
    if !have("ssh-keygen", "ecdsa_refused") {
        return;
    }
    let dir = TempDir::new("ecdsa");
    let key = dir.path("k");
    run(
        "ssh-keygen",
        &[
            &"-q", &"-t", &"ecdsa", &"-b", &"256", &"-N", &"", &"-f", &key,
        ],
    );
    let pub_path = dir.path("k.pub");
    let forms = [
        std::fs::read_to_string(&pub_path).unwrap(),
        run("ssh-keygen", &[&"-e", &"-f", &pub_path]),
        run("ssh-keygen", &[&"-e", &"-m", &"PKCS8", &"-f", &pub_path]),
    ];
    for form in forms {
        match import(form.as_bytes()) {
            Err(KeyError::Unsupported(m)) => assert!(m.contains("ECDSA"), "{m}"),
            other => panic!("{form}: {other:?}"),
        }
    }
    // DSA: OpenSSH 9.2 still makes DSA keys; later releases dropped it.
    let dsa = dir.path("d");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "dsa", "-N", "", "-f"])
        .arg(&dsa)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let line = std::fs::read_to_string(dir.path("d.pub")).unwrap();
        assert!(matches!(
            import(line.as_bytes()),
            Err(KeyError::Unsupported(_))
        ));
    } else {
        eprintln!(
            "ecdsa_and_dsa_keys_are_refused: this ssh-keygen makes no DSA keys; DSA part skipped"
        );
    }
}

#[test]
fn rsa_keys_of_other_sizes_are_refused() {
    if !have("openssl", "rsa_sizes") {
        return;
    }
    let ssh_keygen = have("ssh-keygen", "rsa_sizes (OpenSSH form)");
    for bits in ["512", "1536", "2047"] {
        let dir = TempDir::new("rsa-size");
        let private = dir.path("k.pem");
        run("openssl", &[&"genrsa", &"-out", &private, &bits]);
        let spki = dir.path("pub.pem");
        run(
            "openssl",
            &[&"rsa", &"-in", &private, &"-pubout", &"-out", &spki],
        );
        let pem = std::fs::read_to_string(&spki).unwrap();
        match import(pem.as_bytes()) {
            Err(KeyError::Unsupported(m)) => assert!(m.contains(&format!("{bits} bits")), "{m}"),
            other => panic!("{bits}: {other:?}"),
        }
        // The OpenSSH form, where ssh-keygen converts it (it refuses keys under 1024 bits).
        if ssh_keygen {
            let out = Command::new("ssh-keygen")
                .args(["-i", "-m", "PKCS8", "-f"])
                .arg(&spki)
                .stderr(Stdio::null())
                .output()
                .unwrap();
            if out.status.success() {
                match import(&out.stdout) {
                    Err(KeyError::Unsupported(m)) => assert!(m.contains(&format!("{bits} bits"))),
                    other => panic!("{bits} OpenSSH: {other:?}"),
                }
            } else {
                eprintln!(
                    "rsa_sizes: ssh-keygen will not convert a {bits}-bit key; OpenSSH form skipped"
                );
            }
        }
    }
}
