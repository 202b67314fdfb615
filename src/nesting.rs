//! How deeply a stored value nests, found without decoding it.
//!
//! `Session::insert` refuses a value nested deeper than reads accept, so that
//! whatever is stored can be read back. Decoding a long value only to count
//! its depth cost as much as reading it (a typical session's 18-line cart:
//! about 9 µs, half of building and sealing the session). Walking the heads
//! answers the common case, a shallow value, for the price of a scan; only a
//! value the walk cannot clear is decoded.

/// Deepest nesting the walk tracks; a deeper value is left to the decoder.
const TRACKED: usize = 32;

/// An array, map or tag the walk is inside.
#[derive(Clone, Copy)]
enum Open {
    /// Items still expected (a map's keys and values both count).
    Items(u64),
    /// An indefinite-length array: ends at a break.
    IndefiniteArray,
    /// An indefinite-length map: ends at a break after a value, not a key.
    IndefiniteMap { key_read: bool },
}

/// Whether `value`, one well-formed CBOR item, certainly nests no deeper than
/// `max_depth` levels, counted as `ciborium`'s recursion limit counts them:
/// one per array, map and tag.
///
/// `false` means "maybe deeper": the value is, or the walk met something it
/// does not follow (not one structurally well-formed item, more than
/// [`TRACKED`] levels). Text is not checked as UTF-8. The walk
/// never counts fewer levels than the decoder, since every level the decoder
/// enters starts at a head that the walk counts, so `true` is safe to act on.
pub(crate) fn within_depth(value: &[u8], max_depth: usize) -> bool {
    let limit = max_depth.min(TRACKED);
    // Items still expected by each open array, map or tag, innermost last.
    let mut open = [Open::Items(0); TRACKED];
    let mut depth: usize = 0;
    let mut pos = 0;
    loop {
        let Some(&initial) = value.get(pos) else {
            return false;
        };
        pos += 1;
        if initial == 0xff {
            // A break ends the innermost container, which must be indefinite.
            match depth.checked_sub(1).map(|i| open[i]) {
                Some(Open::IndefiniteArray | Open::IndefiniteMap { key_read: false }) => {
                    depth -= 1;
                }
                _ => return false,
            }
        } else {
            let Some(head) = argument(value, &mut pos, initial) else {
                return false;
            };
            match initial >> 5 {
                // Integers, floats and simple values: the head is the item.
                0 | 1 | 7 => {}
                2 | 3 => {
                    let skipped = match head {
                        Some(len) => skip(value, &mut pos, len),
                        None => skip_chunks(value, &mut pos, initial >> 5),
                    };
                    if !skipped {
                        return false;
                    }
                }
                major => {
                    if depth == limit {
                        return false;
                    }
                    let entered = match (major, head) {
                        (4, None) => Open::IndefiniteArray,
                        (5, None) => Open::IndefiniteMap { key_read: false },
                        (4, Some(n)) => Open::Items(n),
                        (5, Some(n)) => match n.checked_mul(2) {
                            Some(items) => Open::Items(items),
                            None => return false,
                        },
                        // A tag wraps exactly one item.
                        _ => Open::Items(1),
                    };
                    if !matches!(entered, Open::Items(0)) {
                        open[depth] = entered;
                        depth += 1;
                        continue;
                    }
                }
            }
        }
        // One item is complete: count it against the containers it closes.
        loop {
            if depth == 0 {
                return pos == value.len();
            }
            match &mut open[depth - 1] {
                Open::IndefiniteArray => break,
                Open::IndefiniteMap { key_read } => {
                    *key_read = !*key_read;
                    break;
                }
                Open::Items(expected) => {
                    *expected -= 1;
                    if *expected > 0 {
                        break;
                    }
                    depth -= 1;
                }
            }
        }
    }
}

/// Reads the argument that follows `initial`: `Some(n)`, or `Some(None)` for
/// an indefinite length (allowed for strings, arrays and maps only).
fn argument(value: &[u8], pos: &mut usize, initial: u8) -> Option<Option<u64>> {
    let info = initial & 0x1f;
    let extra = match info {
        0..=23 => return Some(Some(u64::from(info))),
        24..=27 => 1usize << (info - 24),
        31 if (2..=5).contains(&(initial >> 5)) => return Some(None),
        _ => return None,
    };
    let bytes = value.get(*pos..pos.checked_add(extra)?)?;
    *pos += extra;
    Some(Some(bytes.iter().fold(0, |n, &b| n << 8 | u64::from(b))))
}

fn skip(value: &[u8], pos: &mut usize, len: u64) -> bool {
    match usize::try_from(len)
        .ok()
        .and_then(|len| pos.checked_add(len))
    {
        Some(end) if end <= value.len() => {
            *pos = end;
            true
        }
        _ => false,
    }
}

/// Skips the definite-length chunks of an indefinite string of `major` type,
/// and its break.
fn skip_chunks(value: &[u8], pos: &mut usize, major: u8) -> bool {
    loop {
        let Some(&initial) = value.get(*pos) else {
            return false;
        };
        *pos += 1;
        if initial == 0xff {
            return true;
        }
        if initial >> 5 != major {
            return false;
        }
        match argument(value, pos, initial) {
            Some(Some(len)) if skip(value, pos, len) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the decoder says of `bytes` under `max_depth`: within the limit,
    /// beyond it, or not one well-formed item.
    fn decoded_within(bytes: &[u8], max_depth: usize) -> Option<bool> {
        let mut reader = bytes;
        let decoded: Result<serde::de::IgnoredAny, _> =
            ciborium::de::from_reader_with_recursion_limit(&mut reader, max_depth);
        match decoded {
            Ok(_) if reader.is_empty() => Some(true),
            Err(ciborium::de::Error::RecursionLimitExceeded) => Some(false),
            _ => None,
        }
    }

    fn nested(levels: usize, head: &[u8]) -> Vec<u8> {
        let mut bytes = head.repeat(levels);
        bytes.push(0x01);
        bytes
    }

    /// At the limit the walk clears the value, one level beyond it does not,
    /// for each kind of level, and the decoder agrees.
    #[test]
    fn the_walk_stops_where_the_limit_does() {
        for head in [&[0x81][..], &[0xa1, 0x01], &[0xc6], &[0x9f], &[0xbf, 0x01]] {
            for levels in 0..=TRACKED {
                let mut bytes = nested(levels, head);
                if head[0] & 0x1f == 31 {
                    bytes.extend(std::iter::repeat_n(0xff, levels));
                }
                assert!(within_depth(&bytes, levels), "{bytes:02x?}");
                assert_eq!(decoded_within(&bytes, levels), Some(true), "{bytes:02x?}");
                if levels > 0 {
                    assert!(!within_depth(&bytes, levels - 1), "{bytes:02x?}");
                    assert_eq!(decoded_within(&bytes, levels - 1), Some(false));
                }
            }
        }
        // A break closes its container, and the parent goes on.
        let closed_then_more = [0x82, 0x9f, 0x81, 0x01, 0xff, 0xa1, 0x01, 0x02];
        assert!(within_depth(&closed_then_more, 3));
        assert_eq!(decoded_within(&closed_then_more, 3), Some(true));
        assert!(!within_depth(&closed_then_more, 2));
        assert_eq!(decoded_within(&closed_then_more, 2), Some(false));
        // Beyond what the walk tracks, it leaves the answer to the decoder.
        assert!(!within_depth(&nested(TRACKED + 1, &[0x81]), 64));
    }

    /// Values as applications store them are cleared without decoding.
    #[test]
    fn shallow_values_are_cleared() {
        #[derive(serde::Serialize)]
        struct Line {
            sku: &'static str,
            quantity: u32,
            price: f64,
            tags: Vec<&'static str>,
            note: Option<Vec<u8>>,
        }
        let line = |i: u32| Line {
            sku: "SKU-00042",
            quantity: i,
            price: f64::from(i) * 1.25,
            tags: vec!["gift", "fragile"],
            note: i.is_multiple_of(2).then(|| vec![0xff; 40]),
        };
        let cart: Vec<Line> = (0..18).map(line).collect();
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&cart, &mut bytes).expect("encodes");
        assert!(within_depth(&bytes, 3));
        assert!(!within_depth(&bytes, 2));
        // Indefinite strings, and a negative integer, half and double floats.
        let mixed = [
            0x84, 0x5f, 0x42, 1, 2, 0x41, 3, 0xff, 0x7f, 0x61, b'a', 0xff, 0x38, 0x63, 0xf9, 0x3c,
            0x00,
        ];
        assert!(within_depth(&mixed, 1));
        assert_eq!(decoded_within(&mixed, 1), Some(true));
        assert!(!within_depth(&mixed, 0));
        let double = [0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0];
        assert!(within_depth(&double, 0));
        assert!(
            !within_depth(&[&mixed[..], &double].concat(), 1),
            "two items"
        );
    }

    /// Truncated, trailing or malformed input is never cleared.
    #[test]
    fn malformed_input_is_not_cleared() {
        for bytes in [
            &[][..],
            &[0x82, 0x01],                                           // an item missing
            &[0x01, 0x01],                                           // two items
            &[0xff],                                                 // a break outside a container
            &[0x81, 0xff],                                           // a break in a definite array
            &[0xbf, 0x01, 0xff],                                     // a key without its value
            &[0x1c],                   // reserved additional information
            &[0x1f],                   // an indefinite integer
            &[0x19, 0x01],             // a truncated argument
            &[0x43, 0x01],             // a truncated string
            &[0x5f, 0x61, b'a', 0xff], // a text chunk in a byte string
            &[0x5f, 0x41, 0x01],       // an unterminated indefinite string
            &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // 2^64 - 1 pairs: 2^65 - 2 items
        ] {
            assert!(!within_depth(bytes, TRACKED), "{bytes:02x?}");
        }
    }

    /// Any value `ciborium` encodes, nested a few levels through arrays,
    /// maps and tags (bignum tags aside, which the decoder may read without
    /// a level).
    fn arb_value() -> impl Strategy<Value = ciborium::Value> {
        use ciborium::Value;
        let leaf = prop_oneof![
            any::<i64>().prop_map(|n| Value::Integer(n.into())),
            any::<f64>().prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            ".{0,30}".prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(8, 64, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner.clone()), 0..3)
                    .prop_map(Value::Map),
                (4u64..1000, inner).prop_map(|(tag, value)| Value::Tag(tag, Box::new(value))),
            ]
        })
    }

    proptest! {
        /// On encoded values the walk answers exactly as the decoder does, at
        /// every limit: it is a fast path, not only a safe one.
        #[test]
        fn the_walk_agrees_with_the_decoder_on_encoded_values(value in arb_value()) {
            let mut bytes = Vec::new();
            ciborium::ser::into_writer(&value, &mut bytes).expect("encodes");
            for max_depth in 0..10 {
                prop_assert_eq!(
                    Some(within_depth(&bytes, max_depth)),
                    decoded_within(&bytes, max_depth),
                    "{:02x?} at {}", bytes, max_depth
                );
            }
        }

        /// On any bytes, the walk never clears what the decoder refuses for
        /// depth (what `insert` asks of it; text is not checked as UTF-8).
        #[test]
        fn the_walk_never_clears_what_the_decoder_refuses(
            bytes in proptest::collection::vec(
                prop_oneof![
                    4 => prop_oneof![Just(0x81u8), Just(0x82), Just(0x9f), Just(0xa1), Just(0xbf), Just(0xc6)],
                    3 => prop_oneof![Just(0x01u8), Just(0x41), Just(0x61), Just(0x5f), Just(0x7f), Just(0xf6)],
                    2 => Just(0xffu8),
                    1 => any::<u8>(),
                ],
                0..48,
            ),
            max_depth in 0usize..8,
        ) {
            if within_depth(&bytes, max_depth) {
                prop_assert_ne!(decoded_within(&bytes, max_depth), Some(false), "{:02x?}", bytes);
            }
        }
    }

    /// Arguments of two and four bytes (lengths and counts of 256 and more)
    /// are read in full: the walk clears long values too, rather than
    /// leaving them to the decoder.
    #[test]
    fn multi_byte_arguments_are_read_in_full() {
        use ciborium::Value;
        let int = |n: u64| Value::Integer(n.into());
        for (value, depth) in [
            (Value::Bytes(vec![7; 300]), 0),      // 0x59: two-byte length
            (Value::Text("a".repeat(70_000)), 0), // 0x7a: four-byte length
            (Value::Array(vec![int(1); 300]), 1), // 0x99: two-byte count
            (
                Value::Map((0..256).map(|i| (int(i), Value::Null)).collect()),
                1,
            ), // 0xb9
            (
                Value::Array(vec![Value::Bytes(vec![0; 256]), int(u64::MAX)]),
                1,
            ),
        ] {
            let mut bytes = Vec::new();
            ciborium::ser::into_writer(&value, &mut bytes).expect("encodes");
            assert!(within_depth(&bytes, depth), "{:02x?}", &bytes[..4]);
            assert_eq!(decoded_within(&bytes, depth), Some(true));
            if depth > 0 {
                assert!(!within_depth(&bytes, depth - 1), "{:02x?}", &bytes[..4]);
            }
        }
    }
}
