//! Hex bytecode as the benchmark inputs write it: optional `0x`, whitespace,
//! and evmone's `(NxHEX)` runs (the bytes `HEX` repeated `N` times).

/// Most bytes one text may decode to, runs expanded: 16 MiB, far above any
/// real contract (EIP-170 caps deployed code at 24 KiB) or calldata. Without
/// a cap on the total, a few hundred bytes of runs expand to gigabytes.
pub const MAX_DECODED_BYTES: usize = 16 << 20;

/// Decodes `text`; fails on bad hex or when the result would exceed
/// [`MAX_DECODED_BYTES`] (checked before any run is expanded).
pub fn parse(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let max_digits = 2 * MAX_DECODED_BYTES;
    let too_long = || format!("bytecode longer than the limit of {MAX_DECODED_BYTES} bytes");
    let mut digits = String::new();
    // Whitespace is dropped as the text is copied so that it never counts
    // against the limit.
    let push_plain = |digits: &mut String, s: &str| -> Result<(), String> {
        for c in s.chars().filter(|c| !c.is_whitespace()) {
            if digits.len() >= max_digits {
                return Err(too_long());
            }
            digits.push(c);
        }
        Ok(())
    };
    let mut rest = t;
    while let Some(open) = rest.find('(') {
        push_plain(&mut digits, &rest[..open])?;
        let close = rest[open..]
            .find(')')
            .map(|c| open + c)
            .ok_or("unclosed `(` in run-length notation")?;
        let inner = &rest[open + 1..close];
        let bad = || format!("bad run-length `({inner})`, expected `(NxHEX)`");
        let (n, bytes) = inner.split_once('x').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let bytes = bytes.trim();
        if bytes.is_empty() || bytes.len() % 2 != 0 {
            return Err(bad());
        }
        let run_len = n.checked_mul(bytes.len()).ok_or_else(too_long)?;
        if run_len > max_digits - digits.len() {
            return Err(too_long());
        }
        digits.push_str(&bytes.repeat(n));
        rest = &rest[close + 1..];
    }
    push_plain(&mut digits, rest)?;
    if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("invalid hex character {c:?} at position {i}"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    hex::decode(&digits).map_err(|e| format!("invalid hex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::{parse, MAX_DECODED_BYTES};

    #[test]
    fn plain_prefixed_and_runs() {
        assert_eq!(parse("0x6001").unwrap(), vec![0x60, 1]);
        assert_eq!(
            parse("60(3x5b)00\n").unwrap(),
            vec![0x60, 0x5b, 0x5b, 0x5b, 0]
        );
        assert_eq!(parse("").unwrap(), Vec::<u8>::new());
        assert!(parse("0x6g").is_err());
        assert!(parse("600").is_err());
        assert_eq!(parse("(2x0102)ff").unwrap(), vec![1, 2, 1, 2, 0xff]);
        assert!(parse("(3x5)").is_err());
        assert!(parse("(3x)").is_err());
        assert!(parse("(3x5b").is_err());
    }

    #[test]
    fn the_total_expanded_length_is_capped() {
        // Exactly at the limit, in two runs and some plain text.
        let half = MAX_DECODED_BYTES / 2;
        let ok = format!("({}x5b)\n 00 ({}x5b)", half - 1, half);
        assert_eq!(parse(&ok).unwrap().len(), MAX_DECODED_BYTES);
        // Each run within the old per-run cap, together gigabytes.
        let runs = format!("({}x5b)", MAX_DECODED_BYTES).repeat(128);
        let err = parse(&runs).unwrap_err();
        assert!(err.contains("longer than the limit"), "{err}");
        // One byte over, in plain text after the runs.
        assert!(parse(&format!("({}x5b)00", MAX_DECODED_BYTES)).is_err());
        // A count that overflows when multiplied.
        assert!(parse(&format!("({}x5b5b)", usize::MAX / 2 + 1)).is_err());
        // Whitespace does not count.
        let spaced = format!("{}00", " \n".repeat(MAX_DECODED_BYTES));
        assert_eq!(parse(&spaced).unwrap(), vec![0]);
    }
}
