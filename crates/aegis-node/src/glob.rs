//! Redis's glob patterns, for `KEYS` and `SCAN ... MATCH`: `*` (any run of bytes), `?`
//! (any one byte), `[abc]`, `[^abc]` and `[a-z]` (a set, its complement, a range, in
//! either order), and `\x` (the byte `x` itself). A `[` without its `]` runs to the end
//! of the pattern, as in Redis.
//!
//! The match backtracks only to the last `*` seen, so it takes at most time in
//! proportion to the pattern's length times the text's, whatever the pattern: a client
//! cannot make it take exponential time.

/// Whether `text` matches `pattern`.
pub(crate) fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was (the pattern just after it) and the text it now stands for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if let Some(next) = step(pattern, p, text[t]) {
            match next {
                Step::Star => {
                    while pattern.get(p) == Some(&b'*') {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                Step::Matched(after) => {
                    p = after;
                    t += 1;
                    continue;
                }
                Step::Mismatch => {}
            }
        }
        // Let the last `*` take one more byte, or fail.
        match star {
            Some((after_star, from)) => {
                p = after_star;
                t = from + 1;
                star = Some((after_star, from + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

enum Step {
    /// `*`: handled by the caller.
    Star,
    /// The pattern element matched the byte; the next element starts here.
    Matched(usize),
    /// It did not.
    Mismatch,
}

/// What the pattern element at `p` does with the byte `c`; `None` past the pattern's end.
fn step(pattern: &[u8], p: usize, c: u8) -> Option<Step> {
    let element = *pattern.get(p)?;
    Some(match element {
        b'*' => Step::Star,
        b'?' => Step::Matched(p + 1),
        b'[' => {
            let (matched, after) = class(pattern, p, c);
            if matched {
                Step::Matched(after)
            } else {
                Step::Mismatch
            }
        }
        b'\\' if p + 1 < pattern.len() => {
            if pattern[p + 1] == c {
                Step::Matched(p + 2)
            } else {
                Step::Mismatch
            }
        }
        literal if literal == c => Step::Matched(p + 1),
        _ => Step::Mismatch,
    })
}

/// Whether the class opening at `open` (a `[`) holds `c`, and where the pattern goes on.
fn class(pattern: &[u8], open: usize, c: u8) -> (bool, usize) {
    let mut i = open + 1;
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => {
                matched |= pattern[i + 1] == c;
                i += 2;
            }
            b']' => {
                i += 1;
                break;
            }
            low if i + 2 < pattern.len() && pattern[i + 1] == b'-' => {
                let high = pattern[i + 2];
                let (low, high) = if low <= high {
                    (low, high)
                } else {
                    (high, low)
                };
                matched |= (low..=high).contains(&c);
                i += 3;
            }
            byte => {
                matched |= byte == c;
                i += 1;
            }
        }
    }
    (matched != negated, i)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_as_in_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("user:*", "user:1", true),
            ("user:*", "user", false),
            ("*:1", "user:1", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "hllo", true),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("[\\]]", "]", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*a", "bbba", true),
            ("*a", "bbab", false),
            // An unclosed class runs to the end of the pattern.
            ("h[ab", "ha", true),
            ("h[ab", "hc", false),
            ("trailing\\", "trailing\\", true),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern:?} against {text:?}"
            );
        }
    }

    /// Stars that cannot match take time in proportion to the pattern times the text.
    #[test]
    fn many_stars_do_not_explode() {
        let pattern = "a*".repeat(40) + "b";
        let text = "a".repeat(5_000);
        assert!(!matches(pattern.as_bytes(), text.as_bytes()));
    }
}
