"""Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.

The keys kumori makes must work with the real tools (ssh-keygen, openssl), and their
fingerprints must be the ones AWS documents:
- created RSA: SHA-1 of the DER (PKCS#8) private key, colon-separated hex;
- imported RSA: MD5 of the DER public key (SubjectPublicKeyInfo), colon-separated hex;
- ED25519 (either way): base64 of the SHA-256 of the public key, as OpenSSH shows it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import pytest
from support import client, expect_error, stored_bodies, tag_dict, tag_spec

NEEDS_TOOLS = pytest.mark.skipif(
    not (shutil.which("ssh-keygen") and shutil.which("openssl")),
    reason="needs ssh-keygen and openssl on the machine",
)


def run(*cmd, stdin: bytes | None = None) -> bytes:
    return subprocess.run(cmd, input=stdin, capture_output=True, check=True, timeout=60).stdout


def openssl_colon_digest(alg: str, der: bytes) -> str:
    out = run("openssl", "dgst", f"-{alg}", "-c", stdin=der).decode()
    return out.strip().split("= ")[-1].lower()


def write_private(tmp_path, name: str, material: str):
    path = tmp_path / name
    path.write_text(material)
    os.chmod(path, 0o600)
    return path


def sha256_b64(ssh_keygen_l: str) -> str:
    # "256 SHA256:abc... comment (ED25519)" -> "abc..." (OpenSSH drops base64 padding).
    return ssh_keygen_l.split()[1].removeprefix("SHA256:")


@NEEDS_TOOLS
def test_created_rsa_key_is_real_and_fingerprinted_as_aws_does(ec2, tmp_path):
    key = ec2.create_key_pair(KeyName="bastion")
    assert key["KeyPairId"].startswith("key-")
    material = key["KeyMaterial"]
    assert material.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    path = write_private(tmp_path, "bastion.pem", material)
    assert b"RSA key ok" in run("openssl", "rsa", "-in", str(path), "-check", "-noout")
    assert run("openssl", "rsa", "-in", str(path), "-text", "-noout").startswith(b"Private-Key: (2048 bit")
    pkcs8 = run("openssl", "pkcs8", "-in", str(path), "-inform", "PEM", "-outform", "DER", "-topk8", "-nocrypt")
    assert key["KeyFingerprint"] == openssl_colon_digest("sha1", pkcs8)

    # The public key kumori keeps is the private key's own.
    public = run("ssh-keygen", "-y", "-f", str(path)).decode().split()[:2]
    [info] = ec2.describe_key_pairs(KeyNames=["bastion"], IncludePublicKey=True)["KeyPairs"]
    assert info["PublicKey"].split()[:2] == public
    assert info["KeyType"] == "rsa"
    assert info["KeyFingerprint"] == key["KeyFingerprint"]
    assert info["KeyPairId"] == key["KeyPairId"]
    assert "CreateTime" in info
    # Without IncludePublicKey there is none; the private key is never shown again.
    [plain] = ec2.describe_key_pairs(KeyPairIds=[key["KeyPairId"]])["KeyPairs"]
    assert "PublicKey" not in plain and "KeyMaterial" not in plain


@NEEDS_TOOLS
def test_created_ed25519_key_is_an_openssh_key(ec2, tmp_path):
    key = ec2.create_key_pair(KeyName="edkey", KeyType="ed25519")
    material = key["KeyMaterial"]
    assert material.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    path = write_private(tmp_path, "ed.pem", material)
    public = run("ssh-keygen", "-y", "-f", str(path)).decode().split()
    assert public[0] == "ssh-ed25519"
    listed = run("ssh-keygen", "-l", "-f", str(path)).decode()
    assert key["KeyFingerprint"].rstrip("=") == sha256_b64(listed)
    [info] = ec2.describe_key_pairs(KeyNames=["edkey"], IncludePublicKey=True)["KeyPairs"]
    assert info["KeyType"] == "ed25519"
    assert info["PublicKey"].split()[:2] == public[:2]


@pytest.mark.parametrize("key_type,alg", [("rsa", "ssh-rsa"), ("ed25519", "ssh-ed25519")])
def test_ppk_format_is_a_putty_file(ec2, tmp_path, key_type, alg):
    key = ec2.create_key_pair(KeyName=f"putty-{key_type}", KeyType=key_type, KeyFormat="ppk")
    lines = key["KeyMaterial"].splitlines()
    assert lines[0] == f"PuTTY-User-Key-File-3: {alg}"
    assert "Encryption: none" in lines
    assert f"Comment: putty-{key_type}" in lines
    assert any(line.startswith("Private-MAC: ") for line in lines)
    puttygen = shutil.which("puttygen")
    if not puttygen:
        pytest.skip("puttygen (Debian putty-tools) is not installed: checked the file's shape only")
    path = write_private(tmp_path, "k.ppk", key["KeyMaterial"])
    public = run(puttygen, str(path), "-O", "public-openssh").decode().split()
    [info] = ec2.describe_key_pairs(KeyNames=[f"putty-{key_type}"], IncludePublicKey=True)["KeyPairs"]
    assert info["PublicKey"].split()[:2] == public[:2]


@NEEDS_TOOLS
def test_import_accepts_openssh_rfc4716_and_pem_public_keys(ec2, tmp_path):
    priv = tmp_path / "id_rsa"
    run("ssh-keygen", "-q", "-t", "rsa", "-b", "4096", "-N", "", "-C", "me@laptop", "-f", str(priv))
    openssh = (tmp_path / "id_rsa.pub").read_bytes()
    rfc4716 = run("ssh-keygen", "-e", "-f", str(tmp_path / "id_rsa.pub"))
    pkcs8 = run("ssh-keygen", "-e", "-m", "PKCS8", "-f", str(tmp_path / "id_rsa.pub"))
    spki_der = run("openssl", "pkey", "-pubin", "-outform", "DER", stdin=pkcs8)
    expected = openssl_colon_digest("md5", spki_der)
    for i, material in enumerate([openssh, rfc4716, pkcs8]):
        got = ec2.import_key_pair(KeyName=f"laptop-{i}", PublicKeyMaterial=material)
        assert got["KeyFingerprint"] == expected, material[:40]
        assert got["KeyPairId"].startswith("key-")
    [info] = ec2.describe_key_pairs(KeyNames=["laptop-0"], IncludePublicKey=True)["KeyPairs"]
    assert info["PublicKey"].split()[:2] == openssh.decode().split()[:2]
    assert info["KeyType"] == "rsa"

    ed = tmp_path / "id_ed25519"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ed))
    got = ec2.import_key_pair(KeyName="ed", PublicKeyMaterial=(tmp_path / "id_ed25519.pub").read_bytes())
    listed = run("ssh-keygen", "-l", "-f", str(ed)).decode()
    assert got["KeyFingerprint"].rstrip("=") == sha256_b64(listed)


@NEEDS_TOOLS
def test_import_with_the_aws_cli(aws, tmp_path):
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k"))
    r = aws("ec2", "import-key-pair", "--key-name", "cli", "--public-key-material", f"fileb://{tmp_path / 'k.pub'}")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["KeyName"] == "cli"
    r = aws("ec2", "describe-key-pairs", "--key-names", "cli")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["KeyPairs"][0]["KeyType"] == "ed25519"


@NEEDS_TOOLS
def test_import_refuses_what_ec2_refuses(ec2, tmp_path):
    with expect_error("InvalidKey.Format", 400):
        ec2.import_key_pair(KeyName="junk", PublicKeyMaterial=b"this is not a key")
    run("ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "ec"))
    with expect_error("InvalidKey.Format", 400):
        ec2.import_key_pair(KeyName="ecdsa", PublicKeyMaterial=(tmp_path / "ec.pub").read_bytes())
    # A private key is not a public key.
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "ed"))
    with expect_error("InvalidKey.Format", 400):
        ec2.import_key_pair(KeyName="private", PublicKeyMaterial=(tmp_path / "ed").read_bytes())
    assert ec2.describe_key_pairs()["KeyPairs"] == []


def test_names_are_unique_ascii_and_at_most_255_characters(ec2):
    ec2.create_key_pair(KeyName="web", KeyType="ed25519")
    with expect_error("InvalidKeyPair.Duplicate", 400):
        ec2.create_key_pair(KeyName="web", KeyType="ed25519")
    with expect_error("InvalidParameterValue", 400):
        ec2.create_key_pair(KeyName="鍵", KeyType="ed25519")
    with expect_error("InvalidParameterValue", 400):
        ec2.create_key_pair(KeyName="k" * 256, KeyType="ed25519")
    ec2.create_key_pair(KeyName="k" * 255, KeyType="ed25519")
    with expect_error("InvalidParameterValue", 400):
        ec2.create_key_pair(KeyName="bad", KeyType="dsa")
    # Names are per region.
    other = client("ec2", ec2.meta.endpoint_url, "eu-west-1")
    other.create_key_pair(KeyName="web", KeyType="ed25519")
    assert len(ec2.describe_key_pairs(KeyNames=["web"])["KeyPairs"]) == 1


def test_describe_filters_tags_and_not_found(ec2):
    a = ec2.create_key_pair(KeyName="app-1", KeyType="ed25519", TagSpecifications=tag_spec("key-pair", team="web"))
    assert tag_dict(a) == {"team": "web"}
    ec2.create_key_pair(KeyName="app-2", KeyType="ed25519")
    ec2.create_key_pair(KeyName="db", KeyType="ed25519")

    def names(**kw):
        return sorted(k["KeyName"] for k in ec2.describe_key_pairs(**kw)["KeyPairs"])

    assert names() == ["app-1", "app-2", "db"]
    assert names(Filters=[{"Name": "key-name", "Values": ["app-*"]}]) == ["app-1", "app-2"]
    assert names(Filters=[{"Name": "tag:team", "Values": ["web"]}]) == ["app-1"]
    assert names(Filters=[{"Name": "fingerprint", "Values": [a["KeyFingerprint"]]}]) == ["app-1"]
    assert names(Filters=[{"Name": "key-pair-id", "Values": [a["KeyPairId"]]}]) == ["app-1"]
    [tagged] = ec2.describe_key_pairs(KeyNames=["app-1"])["KeyPairs"]
    assert tag_dict(tagged) == {"team": "web"}
    with expect_error("InvalidKeyPair.NotFound", 400):
        ec2.describe_key_pairs(KeyNames=["nope"])
    with expect_error("InvalidKeyPair.NotFound", 400):
        ec2.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])
    ec2.create_tags(Resources=[a["KeyPairId"]], Tags=[{"Key": "env", "Value": "dev"}])
    assert names(Filters=[{"Name": "tag:env", "Values": ["dev"]}]) == ["app-1"]


def test_delete_by_name_or_id_and_deleting_nothing_succeeds(ec2):
    a = ec2.create_key_pair(KeyName="a", KeyType="ed25519")
    ec2.create_key_pair(KeyName="b", KeyType="ed25519")
    assert ec2.delete_key_pair(KeyName="a")["Return"] is True
    assert ec2.delete_key_pair(KeyPairId=ec2.describe_key_pairs(KeyNames=["b"])["KeyPairs"][0]["KeyPairId"])["Return"]
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    # EC2's delete is idempotent.
    assert ec2.delete_key_pair(KeyName="a")["Return"] is True
    assert ec2.delete_key_pair(KeyPairId=a["KeyPairId"])["Return"] is True
    # The name is free again.
    ec2.create_key_pair(KeyName="a", KeyType="ed25519")


def rsa_private_exponent(pem_path) -> bytes:
    text = run("openssl", "rsa", "-in", str(pem_path), "-text", "-noout").decode()
    block = text.split("privateExponent:")[1].split("prime1:")[0]
    return bytes.fromhex("".join(block.split()).replace(":", "")).lstrip(b"\0")


def ed25519_seed(material: str) -> bytes:
    body = base64.b64decode("".join(line for line in material.splitlines() if not line.startswith("-----")))
    # The private section holds string(64 bytes: seed || public key); the public key also
    # stands alone just before it.
    for i in range(len(body) - 68):
        if body[i : i + 4] == b"\0\0\0\x40" and body[i + 36 : i + 68] in body[: i]:
            return body[i + 4 : i + 36]
    raise AssertionError("no ed25519 seed in the OpenSSH private key")


def encodings(secret: bytes) -> list[bytes]:
    """The secret raw, in hex and in base64 at each of the three byte alignments."""
    out = [secret, secret.hex().encode()]
    for shift in range(3):
        out.append(base64.b64encode(secret[shift:])[4:-4])
    return out


@NEEDS_TOOLS
def test_the_private_key_is_never_stored(spawn, tmp_path):
    srv = spawn(state_dir=tmp_path / "state")
    ec2 = client("ec2", srv.endpoint)
    rsa = ec2.create_key_pair(KeyName="rsa")["KeyMaterial"]
    ed = ec2.create_key_pair(KeyName="ed", KeyType="ed25519")["KeyMaterial"]
    srv.stop()
    state = tmp_path / "state"
    dumped = b"".join(f.read_bytes() for f in state.iterdir() if f.is_file()) if state.exists() else b""
    dumped += stored_bodies(srv)
    secrets = [rsa_private_exponent(write_private(tmp_path, "rsa.pem", rsa)), ed25519_seed(ed)]
    for secret in secrets:
        assert len(secret) >= 32
        for form in encodings(secret):
            assert form not in dumped
    assert b"PRIVATE KEY" not in dumped
    # What is kept survives the restart.
    srv = spawn(state_dir=tmp_path / "state")
    names = sorted(k["KeyName"] for k in client("ec2", srv.endpoint).describe_key_pairs()["KeyPairs"])
    assert names == ["ed", "rsa"]


def test_created_keys_are_distinct(ec2):
    fingerprints = {ec2.create_key_pair(KeyName=f"k{i}", KeyType="ed25519")["KeyFingerprint"] for i in range(5)}
    assert len(fingerprints) == 5
    assert all(len(base64.b64decode(f)) == 32 for f in fingerprints)
