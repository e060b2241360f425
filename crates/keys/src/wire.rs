//! The SSH wire encoding (RFC 4251 § 5) of the few things key files hold: `string` (a u32
//! big-endian length, then the bytes) and `mpint` (a `string` holding a two's-complement
//! big-endian integer; ours are never negative).

/// Appends an SSH `string`.
pub(crate) fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("SSH strings are shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends a non-negative integer, given as big-endian magnitude bytes, as an SSH `mpint`:
/// no leading zero bytes, except one when the top bit is set (it would read as negative).
pub(crate) fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let digits = &magnitude[start..];
    if digits.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut padded = Vec::with_capacity(digits.len() + 1);
        padded.push(0);
        padded.extend_from_slice(digits);
        put_string(out, &padded);
    } else {
        put_string(out, digits);
    }
}

/// Reads SSH wire values from a byte slice; every read answers `None` on truncated input.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    /// The next SSH `string`.
    pub(crate) fn string(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Some(value)
    }

    /// The next SSH `mpint`, which must not be negative, as magnitude bytes without leading
    /// zeros (empty for zero).
    pub(crate) fn positive_mpint(&mut self) -> Option<&'a [u8]> {
        let value = self.string()?;
        if value.first().is_some_and(|&b| b & 0x80 != 0) {
            return None;
        }
        let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
        Some(&value[start..])
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_encoding_follows_rfc_4251() {
        // RFC 4251 § 5's examples.
        let cases: [(&[u8], &[u8]); 4] = [
            (&[], &[0, 0, 0, 0]),
            (&[0x00, 0x80], &[0, 0, 0, 2, 0x00, 0x80]),
            (
                &[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
                &[0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
            ),
            (&[0x00, 0x00, 0x7f], &[0, 0, 0, 1, 0x7f]),
        ];
        for (magnitude, wire) in cases {
            let mut out = Vec::new();
            put_mpint(&mut out, magnitude);
            assert_eq!(out, wire, "{magnitude:02x?}");
            let mut r = Reader::new(&out);
            let read = r.positive_mpint().unwrap();
            assert!(r.is_empty());
            let start = magnitude
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(magnitude.len());
            assert_eq!(read, &magnitude[start..]);
        }
    }

    #[test]
    fn reader_refuses_truncated_and_negative_values() {
        assert_eq!(Reader::new(&[0, 0, 0]).string(), None);
        assert_eq!(Reader::new(&[0, 0, 0, 5, 1, 2]).string(), None);
        assert_eq!(Reader::new(&[0, 0, 0, 1, 0x80]).positive_mpint(), None);
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).string(), None);
    }
}
