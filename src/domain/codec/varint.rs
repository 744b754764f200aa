//! LEB128 varints and zigzag signed integers, read from a byte slice with bounds checked.

use super::CodecError;

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes).
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a signed integer, zigzag encoded (small magnitudes take few bytes).
pub fn put_signed(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Reads values off the front of a byte slice.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// One unsigned varint.
    pub fn get(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for (i, &b) in self.bytes.iter().enumerate().take(10) {
            let low = u64::from(b & 0x7f);
            if i == 9 && low > 1 {
                return Err(CodecError::Corrupt("varint overflows 64 bits"));
            }
            v |= low << (7 * i);
            if b & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(v);
            }
        }
        Err(if self.bytes.len() >= 10 {
            CodecError::Corrupt("varint longer than 10 bytes")
        } else {
            CodecError::Corrupt("truncated varint")
        })
    }

    /// One zigzag-encoded signed varint.
    pub fn get_signed(&mut self) -> Result<i64, CodecError> {
        let v = self.get()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count of items, each taking at least `min_item_bytes`: refused when the rest of the
    /// input could not hold them (garbage never allocates).
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, CodecError> {
        let n = self.get()?;
        let n = usize::try_from(n).map_err(|_| CodecError::Corrupt("count too large"))?;
        if n.saturating_mul(min_item_bytes) > self.bytes.len() {
            return Err(CodecError::Corrupt("count larger than the data"));
        }
        Ok(n)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.bytes.len() {
            return Err(CodecError::Corrupt("truncated bytes"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(values in proptest::collection::vec(any::<u64>(), 0..50), signed in any::<i64>()) {
            let mut out = Vec::new();
            for v in &values {
                put(&mut out, *v);
            }
            put_signed(&mut out, signed);
            let mut r = Reader::new(&out);
            for v in &values {
                prop_assert_eq!(r.get().unwrap(), *v);
            }
            prop_assert_eq!(r.get_signed().unwrap(), signed);
            prop_assert_eq!(r.remaining(), 0);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = Reader::new(&bytes);
            while r.remaining() > 0 {
                if r.get().is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn sizes_and_edges() {
        let mut out = Vec::new();
        put(&mut out, 127);
        assert_eq!(out.len(), 1);
        put(&mut out, 128);
        assert_eq!(out.len(), 3);
        out.clear();
        put(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
        assert_eq!(Reader::new(&out).get().unwrap(), u64::MAX);
        assert!(Reader::new(&[0xff; 10]).get().is_err());
        assert!(Reader::new(&[0x80]).get().is_err());
        assert!(Reader::new(&[5]).count(1).is_err(), "5 items in no bytes");
    }
}
