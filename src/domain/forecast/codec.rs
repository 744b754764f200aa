//! A profile as the warm-profile annotation holds it: `p1:` and the codec's deflated
//! base64 of varints. Only what a forecast reads is kept, sparsely: each seasonal profile's
//! period index, periods folded, non-zero past averages (in 1/64 of a job) and current
//! counts; each detector's slots with arrivals in their last periods. An office-hours week
//! with hourly cron is a few kilobytes. Reading checks every bound.

use super::{Periodic, Profile, RUNS, Seasonal, Slot};
use crate::domain::codec::{
    CodecError, pack, unpack,
    varint::{Reader, put, put_signed},
};

/// The prefix of an encoded profile.
pub const PROFILE_PREFIX: &str = "p1:";
/// Past averages are kept in steps of 1/64 of a job.
const STEP: f32 = 64.0;

fn put_sparse(out: &mut Vec<u8>, values: impl Iterator<Item = u64>) {
    let items: Vec<(usize, u64)> = values.enumerate().filter(|(_, v)| *v > 0).collect();
    put(out, items.len() as u64);
    let mut last = 0usize;
    for (i, v) in items {
        put(out, (i - last) as u64);
        put(out, v);
        last = i;
    }
}

fn get_sparse(
    r: &mut Reader,
    len: usize,
    mut set: impl FnMut(usize, u64),
) -> Result<(), CodecError> {
    let n = r.count(2)?;
    let mut at = 0usize;
    for k in 0..n {
        let gap = usize::try_from(r.get()?).map_err(|_| CodecError::Corrupt("slot"))?;
        at = at.checked_add(gap).ok_or(CodecError::Corrupt("slot"))?;
        if at >= len || (k > 0 && gap == 0) {
            return Err(CodecError::Corrupt("slot out of range"));
        }
        set(at, r.get()?);
    }
    Ok(())
}

impl Seasonal {
    fn put(&self, out: &mut Vec<u8>) {
        put_signed(out, self.index);
        put(out, u64::from(self.folded));
        put_sparse(out, self.past.iter().map(|p| (p * STEP).round() as u64));
        put_sparse(out, self.current.iter().map(|c| u64::from(*c)));
    }

    fn get(&mut self, r: &mut Reader) -> Result<(), CodecError> {
        self.index = r.get_signed()?;
        self.folded = u32::try_from(r.get()?).map_err(|_| CodecError::Corrupt("periods"))?;
        let past = &mut self.past;
        get_sparse(r, past.len(), |i, v| past[i] = v.min(1 << 20) as f32 / STEP)?;
        let current = &mut self.current;
        get_sparse(r, current.len(), |i, v| {
            current[i] = u16::try_from(v).unwrap_or(u16::MAX)
        })
    }
}

impl Periodic {
    fn put(&self, out: &mut Vec<u8>) {
        let live: Vec<(usize, &Slot)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.counts.iter().any(|c| *c > 0))
            .collect();
        put(out, live.len() as u64);
        let mut last = 0usize;
        for (i, slot) in live {
            put(out, (i - last) as u64);
            put_signed(out, slot.last);
            for c in slot.counts {
                put(out, u64::from(c));
            }
            last = i;
        }
    }

    fn get(&mut self, r: &mut Reader) -> Result<(), CodecError> {
        let n = r.count(2 + RUNS)?;
        let mut at = 0usize;
        for k in 0..n {
            let gap = usize::try_from(r.get()?).map_err(|_| CodecError::Corrupt("slot"))?;
            at = at.checked_add(gap).ok_or(CodecError::Corrupt("slot"))?;
            if at >= self.slots.len() || (k > 0 && gap == 0) {
                return Err(CodecError::Corrupt("slot out of range"));
            }
            let slot = &mut self.slots[at];
            slot.last = r.get_signed()?;
            for c in &mut slot.counts {
                *c = u16::try_from(r.get()?).unwrap_or(u16::MAX);
            }
        }
        Ok(())
    }
}

impl Profile {
    /// The annotation value of this profile.
    pub fn encode(&self) -> String {
        let mut raw = Vec::new();
        self.week.put(&mut raw);
        self.day.put(&mut raw);
        self.hourly.put(&mut raw);
        self.daily.put(&mut raw);
        pack(PROFILE_PREFIX, &raw, flate2::Compression::default())
    }

    /// The profile an annotation value holds.
    pub fn decode(value: &str) -> Result<Self, CodecError> {
        let raw = unpack(value, PROFILE_PREFIX)?;
        let mut r = Reader::new(&raw);
        let mut p = Profile::new();
        p.week.get(&mut r)?;
        p.day.get(&mut r)?;
        p.hourly.get(&mut r)?;
        p.daily.get(&mut r)?;
        if r.remaining() > 0 {
            return Err(CodecError::Corrupt("trailing bytes"));
        }
        Ok(p)
    }
}
