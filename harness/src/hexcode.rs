//! Hex bytecode as the benchmark inputs write it: optional `0x`, whitespace,
//! and evmone's `(NxHEX)` runs (the bytes `HEX` repeated `N` times).

/// Longest run accepted, in hex digits, far above any input.
const MAX_RUN: usize = 1 << 25;

pub fn parse(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut digits = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(open) = rest.find('(') {
        digits.push_str(&rest[..open]);
        let close = rest[open..]
            .find(')')
            .map(|c| open + c)
            .ok_or("unclosed `(` in run-length notation")?;
        let inner = &rest[open + 1..close];
        let bad = || format!("bad run-length `({inner})`, expected `(NxHEX)`");
        let (n, bytes) = inner.split_once('x').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let bytes = bytes.trim();
        if bytes.is_empty() || bytes.len() % 2 != 0 || n.saturating_mul(bytes.len()) > MAX_RUN {
            return Err(bad());
        }
        digits.push_str(&bytes.repeat(n));
        rest = &rest[close + 1..];
    }
    digits.push_str(rest);
    digits.retain(|c| !c.is_whitespace());
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
    use super::parse;

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
}
