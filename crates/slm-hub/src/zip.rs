//! Just enough of the zip format to take one member out of a wheel: the end-of-central-directory
//! record (zip64 included), the central directory, the local header, then the member's bytes
//! stored or deflated, streamed with its size and CRC-32 checked. Every offset and size is checked
//! against the file length; nothing is allocated from a declared size.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use flate2::read::DeflateDecoder;
use flate2::Crc;

use crate::error::{HubError, Result};

/// Where a member's data lies and how it is encoded.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub size: u64,
    pub local_header_offset: u64,
}

fn bad(wheel: &str, reason: impl Into<String>) -> HubError {
    HubError::BadArchive {
        wheel: wheel.to_string(),
        reason: reason.into(),
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn read_at(f: &mut File, off: u64, len: usize, wheel: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(off))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| bad(wheel, format!("read at {off}: {e}")))?;
    Ok(buf)
}

/// Find `member` in the zip archive `f` (named `wheel` in errors).
pub fn find_member(f: &mut File, member: &str, wheel: &str) -> Result<Member> {
    let file_len = f.metadata().map_err(|e| bad(wheel, e.to_string()))?.len();
    let tail_len = file_len.min(22 + 65_535);
    let tail_start = file_len - tail_len;
    let tail = read_at(f, tail_start, tail_len as usize, wheel)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(0x0605_4b50))
        .ok_or_else(|| bad(wheel, "no end-of-central-directory record"))?;
    let mut cd_entries = u64::from(u16_at(&tail, eocd + 10).unwrap_or(0));
    let mut cd_size = u64::from(u32_at(&tail, eocd + 12).unwrap_or(0));
    let mut cd_off = u64::from(u32_at(&tail, eocd + 16).unwrap_or(0));
    if cd_off == 0xFFFF_FFFF || cd_size == 0xFFFF_FFFF || cd_entries == 0xFFFF {
        // zip64: the locator sits just before the EOCD record.
        let loc = eocd
            .checked_sub(20)
            .filter(|&l| u32_at(&tail, l) == Some(0x0706_4b50))
            .ok_or_else(|| bad(wheel, "zip64 locator missing"))?;
        let z64_off = u64_at(&tail, loc + 8).ok_or_else(|| bad(wheel, "zip64 locator"))?;
        if z64_off.checked_add(56).is_none_or(|e| e > file_len) {
            return Err(bad(wheel, "zip64 record past the end"));
        }
        let z = read_at(f, z64_off, 56, wheel)?;
        if u32_at(&z, 0) != Some(0x0606_4b50) {
            return Err(bad(wheel, "bad zip64 record signature"));
        }
        cd_entries = u64_at(&z, 32).unwrap_or(0);
        cd_size = u64_at(&z, 40).unwrap_or(0);
        cd_off = u64_at(&z, 48).unwrap_or(0);
    }
    if cd_off.checked_add(cd_size).is_none_or(|e| e > file_len) || cd_size > (64 << 20) {
        return Err(bad(wheel, "central directory out of bounds"));
    }
    let cd = read_at(f, cd_off, cd_size as usize, wheel)?;
    let mut p = 0usize;
    for _ in 0..cd_entries {
        if u32_at(&cd, p) != Some(0x0201_4b50) {
            return Err(bad(wheel, "bad central directory entry"));
        }
        let field = |off: usize| u32_at(&cd, p + off).map(u64::from);
        let method = u16_at(&cd, p + 10).unwrap_or(0);
        let crc32 = u32_at(&cd, p + 16).unwrap_or(0);
        let mut csize = field(20).unwrap_or(0);
        let mut usize_ = field(24).unwrap_or(0);
        let name_len = usize::from(u16_at(&cd, p + 28).unwrap_or(0));
        let extra_len = usize::from(u16_at(&cd, p + 30).unwrap_or(0));
        let comment_len = usize::from(u16_at(&cd, p + 32).unwrap_or(0));
        let mut lho = field(42).unwrap_or(0);
        let name_bytes = cd
            .get(p + 46..p + 46 + name_len)
            .ok_or_else(|| bad(wheel, "entry name past the directory"))?;
        let extra = cd
            .get(p + 46 + name_len..p + 46 + name_len + extra_len)
            .ok_or_else(|| bad(wheel, "entry extra past the directory"))?;
        if name_bytes == member.as_bytes() {
            // zip64 extended information: the 0xFFFFFFFF fields, in order.
            let mut e = 0usize;
            while e + 4 <= extra.len() {
                let id = u16_at(extra, e).unwrap_or(0);
                let len = usize::from(u16_at(extra, e + 2).unwrap_or(0));
                if id == 1 {
                    let mut q = e + 4;
                    for v in [&mut usize_, &mut csize, &mut lho] {
                        if *v == 0xFFFF_FFFF {
                            *v = u64_at(extra, q).ok_or_else(|| bad(wheel, "zip64 extra"))?;
                            q += 8;
                        }
                    }
                }
                e += 4 + len;
            }
            return Ok(Member {
                name: member.to_string(),
                method,
                crc32,
                compressed_size: csize,
                size: usize_,
                local_header_offset: lho,
            });
        }
        p += 46 + name_len + extra_len + comment_len;
    }
    Err(bad(wheel, format!("no member {member}")))
}

/// A reader over a member's uncompressed bytes that checks its size and CRC-32 at the end.
pub struct MemberReader<'a> {
    inner: Box<dyn Read + 'a>,
    crc: Crc,
    total: u64,
    want: Member,
    wheel: String,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(buf.get(..n).unwrap_or_default());
        self.total = self.total.saturating_add(n as u64);
        let total = self.total;
        if (n == 0 || total > self.want.size)
            && (total != self.want.size || self.crc.sum() != self.want.crc32)
        {
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} in {}: {} bytes / crc {:08x}, want {} / {:08x}",
                        self.want.name,
                        self.wheel,
                        total,
                        self.crc.sum(),
                        self.want.size,
                        self.want.crc32
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// Open `m`'s data for streaming.
pub fn open_member<'a>(f: &'a mut File, m: &Member, wheel: &str) -> Result<MemberReader<'a>> {
    let file_len = f.metadata().map_err(|e| bad(wheel, e.to_string()))?.len();
    let h = read_at(f, m.local_header_offset, 30, wheel)?;
    if u32_at(&h, 0) != Some(0x0403_4b50) {
        return Err(bad(wheel, "bad local header signature"));
    }
    let skip = 30 + u64::from(u16_at(&h, 26).unwrap_or(0)) + u64::from(u16_at(&h, 28).unwrap_or(0));
    let data = m.local_header_offset.saturating_add(skip);
    if data
        .checked_add(m.compressed_size)
        .is_none_or(|e| e > file_len)
    {
        return Err(bad(wheel, "member data past the end"));
    }
    f.seek(SeekFrom::Start(data))
        .map_err(|e| bad(wheel, e.to_string()))?;
    let raw = (&*f).take(m.compressed_size);
    let inner: Box<dyn Read + 'a> = match m.method {
        0 => Box::new(raw),
        8 => Box::new(DeflateDecoder::new(raw)),
        other => {
            return Err(bad(
                wheel,
                format!("compression method {other} not supported"),
            ))
        }
    };
    Ok(MemberReader {
        inner,
        crc: Crc::new(),
        total: 0,
        want: m.clone(),
        wheel: wheel.to_string(),
    })
}
