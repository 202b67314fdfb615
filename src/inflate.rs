//! Inflating untrusted deflate data under an output cap: the token's raw
//! deflate body and the zlib payload of a Django cookie.
//!
//! The whole output is the inflater's window (miniz_oxide's non-wrapping
//! mode), so a back-reference to before the first byte is invalid data, as
//! zlib has it. A streaming inflater with a separate 32 KiB window reads
//! such a reference as zeros instead, and would open tokens that other
//! readers refuse.

use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_PARSE_ZLIB_HEADER, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

use crate::error::{Limit, Malformed};
use crate::Error;
use std::cell::RefCell;

thread_local! {
    // About 11 KB of Huffman tables: one per thread, reset per stream,
    // rather than an allocation on every compressed open.
    static INFLATER: RefCell<DecompressorOxide> = RefCell::new(DecompressorOxide::new());
}

/// How the deflate stream is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrapper {
    /// Raw deflate (RFC 1951), as in tokens.
    Raw,
    /// zlib (RFC 1950): header, deflate, Adler-32 (checked, except in
    /// builds with `--cfg fuzzing`, where miniz_oxide skips it so that
    /// fuzzers get past it), as Django writes.
    #[cfg_attr(not(feature = "django"), allow(dead_code))]
    Zlib,
}

/// Inflates all of `input`, refusing to produce more than `cap` bytes:
/// `limit-exceeded` as soon as the output passes the cap; `malformed` for
/// invalid data, a stream that ends before its final block, or bytes after
/// it. The output buffer grows by doubling, never past `cap + 1` bytes.
pub(crate) fn inflate_capped(input: &[u8], cap: usize, wrapper: Wrapper) -> Result<Vec<u8>, Error> {
    let malformed = || Error::Malformed(Malformed::Compression);
    let flags = match wrapper {
        Wrapper::Raw => TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        Wrapper::Zlib => TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_PARSE_ZLIB_HEADER,
    };
    // One byte past the cap is room enough to see that it was passed.
    let limit = cap.saturating_add(1);
    let mut out = vec![0u8; input.len().saturating_mul(4).max(64).min(limit)];
    INFLATER.with_borrow_mut(|inflater| {
        inflater.init();
        let (mut read, mut written) = (0, 0);
        loop {
            let rest = input.get(read..).ok_or_else(malformed)?;
            let (status, consumed, produced) = decompress(inflater, rest, &mut out, written, flags);
            read += consumed;
            written += produced;
            // The cap before the status: output past it is refused as such
            // even when the same call then met invalid data.
            if written > cap {
                return Err(Error::LimitExceeded(Limit::DecompressedSize));
            }
            match status {
                TINFLStatus::Done if read == input.len() => {
                    out.truncate(written);
                    return Ok(out);
                }
                // Room for more output is all it needs (the buffer is full,
                // and below the limit: `written <= cap`).
                TINFLStatus::HasMoreOutput if out.len() < limit => {
                    let grown = out.len().saturating_mul(2).min(limit);
                    out.resize(grown, 0);
                }
                // Bytes after the final block, invalid data, a truncated
                // stream (all input was given: it cannot wait for more).
                _ => return Err(malformed()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn deflate(data: &[u8], zlib: bool) -> Vec<u8> {
        let mut compressor = Compress::new(Compression::default(), zlib);
        let mut out = Vec::with_capacity(data.len() + 64);
        compressor
            .compress_vec(data, &mut out, FlushCompress::Finish)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_and_caps_both_wrappers() {
        let data = b"sealed-session ".repeat(200);
        for (wrapper, zlib) in [(Wrapper::Raw, false), (Wrapper::Zlib, true)] {
            let packed = deflate(&data, zlib);
            assert_eq!(inflate_capped(&packed, data.len(), wrapper).unwrap(), data);
            assert_eq!(
                inflate_capped(&packed, data.len() - 1, wrapper).unwrap_err(),
                Error::LimitExceeded(Limit::DecompressedSize)
            );
            for cut in [1, packed.len() / 2, packed.len() - 1] {
                assert_eq!(
                    inflate_capped(&packed[..cut], 1 << 20, wrapper).unwrap_err(),
                    Error::Malformed(Malformed::Compression),
                    "cut at {cut}"
                );
            }
            if wrapper == Wrapper::Zlib {
                // The Adler-32 checksum is the last four bytes.
                let mut altered = packed.clone();
                *altered.last_mut().unwrap() ^= 1;
                assert_eq!(
                    inflate_capped(&altered, 1 << 20, wrapper).unwrap_err(),
                    Error::Malformed(Malformed::Compression)
                );
            }
            let mut trailing = packed.clone();
            trailing.push(0);
            assert_eq!(
                inflate_capped(&trailing, 1 << 20, wrapper).unwrap_err(),
                Error::Malformed(Malformed::Compression)
            );
        }
        assert_eq!(
            inflate_capped(&[], 10, Wrapper::Raw).unwrap_err(),
            Error::Malformed(Malformed::Compression)
        );
        // A zero cap: an empty stream (a final stored block of 0 bytes)
        // fits, one byte does not.
        assert_eq!(
            inflate_capped(&[1, 0, 0, 0xff, 0xff], 0, Wrapper::Raw),
            Ok(Vec::new())
        );
        assert_eq!(
            inflate_capped(&deflate(b"x", false), 0, Wrapper::Raw).unwrap_err(),
            Error::LimitExceeded(Limit::DecompressedSize)
        );
    }

    #[test]
    fn a_distance_before_the_first_byte_is_invalid() {
        // Fixed-Huffman final block: literal 'a', then a match of length 3
        // at distance 2 (one byte exists), then end of block. zlib says
        // "invalid distance too far back"; zeros would come out of a
        // zero-filled window.
        // (Checked against Python's zlib: "aaaa" and that error.)
        let too_far = [0x4b, 0x04, 0x42, 0x00];
        // The same with distance 1 is valid: "aaaa".
        let near = [0x4b, 0x04, 0x02, 0x00];
        assert_eq!(inflate_capped(&near, 100, Wrapper::Raw).unwrap(), b"aaaa");
        assert_eq!(
            inflate_capped(&too_far, 100, Wrapper::Raw).unwrap_err(),
            Error::Malformed(Malformed::Compression)
        );
    }
}
