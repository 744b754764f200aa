//! Applied batch ids in their compact form: 64-bit hashes with the second each was written.

use super::{BATCH_IDS_PREFIX, CodecError, second, unwrap_base64, varint};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use varint::Reader;

/// The 64-bit form of a batch id kept in the applied-batches annotation: the first 8 bytes
/// of its SHA-256. Every replica and version computes the same, so a write's id is found by
/// whichever replica retries it; two ids of 1,024 kept collide with odds below 1 in 10^13.
pub fn batch_hash(id: &str) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_le_bytes(first)
}

/// Applied batch ids as hashes with the second each was written, in the order kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchIds(pub Vec<(u64, i64)>);

impl BatchIds {
    /// The annotation value (`b1:` …).
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(2 + self.0.len() * 10);
        raw.push(1);
        varint::put(&mut raw, self.0.len() as u64);
        let mut previous = 0i64;
        for &(hash, at) in &self.0 {
            varint::put_signed(&mut raw, at.wrapping_sub(previous));
            raw.extend_from_slice(&hash.to_le_bytes());
            previous = at;
        }
        let mut out = String::with_capacity(BATCH_IDS_PREFIX.len() + raw.len() * 4 / 3 + 4);
        out.push_str(BATCH_IDS_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
        out
    }

    /// Reads a value written by [`BatchIds::encode`].
    pub fn decode(value: &str) -> Result<Self, CodecError> {
        let raw = unwrap_base64(value, BATCH_IDS_PREFIX)?;
        let mut r = Reader::new(&raw);
        if r.take(1)? != [1] {
            return Err(CodecError::Corrupt("unknown batch ids version"));
        }
        let n = r.count(9)?;
        let mut list = Vec::with_capacity(n);
        let mut previous = 0i64;
        for _ in 0..n {
            let at = second(previous.saturating_add(r.get_signed()?))?;
            let mut hash = [0u8; 8];
            hash.copy_from_slice(r.take(8)?);
            list.push((u64::from_le_bytes(hash), at));
            previous = at;
        }
        if r.remaining() != 0 {
            return Err(CodecError::Corrupt("trailing bytes"));
        }
        Ok(Self(list))
    }
}
