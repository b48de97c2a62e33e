//! Exact decimal arithmetic behind `INCRBYFLOAT`.
//!
//! Redis parses both operands into a C `long double`, adds them and prints the sum with
//! 17 digits after the decimal point. Binary rounding makes that answer depend on the
//! platform (`5000 + 0.2` prints as `5000.20000000000000018` on x86-64), so this module
//! adds exactly in decimal instead and rounds once, at the end, to the same 17 digits.
//! What Redis accepts and refuses is kept: the same syntax, the same input length limit,
//! and the `long double` range (about 10^-4951 to 10^4932), expressed as powers of ten.

use std::cmp::Ordering;

/// Why `incr_by_float` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatError {
    /// The stored value or the increment is not a float Redis would read.
    NotAFloat,
    /// The result is out of range (Redis says "increment would produce NaN or Infinity").
    OutOfRange,
}

/// Longest input Redis reads as a float (its buffer holds 5 KiB including the NUL).
const MAX_INPUT_LEN: usize = 5119;

/// A non-zero value must stay below 10^this: the `long double` maximum is about 1.19e4932.
const MAX_MAGNITUDE_EXP: i64 = 4933;

/// A non-zero value below 10^this underflows a `long double`, which Redis refuses.
const MIN_MAGNITUDE_EXP: i64 = -4950;

/// Digits kept after the decimal point in the result, as Redis prints with `%.17Lf`.
const FRACTION_DIGITS: i64 = 17;

/// Exponents are read up to this size only: anything this large is out of range
/// whatever the digits, and stopping here keeps the arithmetic far from overflow.
const EXPONENT_CAP: i64 = 1_000_000_000;

/// Whether `bytes` is a float `INCRBYFLOAT` accepts.
///
/// The rules are those [`incr_by_float`] applies to both arguments: an optional sign,
/// decimal digits with an optional point, an optional exponent, nothing else, at most
/// 5119 bytes, and a value inside the `long double` range.
#[must_use]
pub(crate) fn is_float(bytes: &[u8]) -> bool {
    Decimal::parse(bytes).is_some()
}

/// `current + increment`, exactly, rounded to 17 digits after the decimal point, as the
/// string Redis stores and replies with.
///
/// The result is plain positional notation (never an exponent), has no trailing zeros
/// after the point, and never reads `-0`; parsing it back gives exactly the value printed.
///
/// # Errors
///
/// [`FloatError::NotAFloat`] when either argument is not a float per [`is_float`];
/// [`FloatError::OutOfRange`] when the rounded sum is 10^4933 or more in magnitude.
pub(crate) fn incr_by_float(current: &[u8], increment: &[u8]) -> Result<Vec<u8>, FloatError> {
    let current = Decimal::parse(current).ok_or(FloatError::NotAFloat)?;
    let increment = Decimal::parse(increment).ok_or(FloatError::NotAFloat)?;
    let sum = current.add(&increment).round_to_places(FRACTION_DIGITS);
    if sum.is_too_large() {
        return Err(FloatError::OutOfRange);
    }
    Ok(sum.to_bytes())
}

/// An exact decimal number: `(-1)^negative × digits × 10^exponent`.
///
/// Kept normalised so that equal values have equal representations: `digits` holds
/// values `0..=9`, most significant first, with neither leading nor trailing zeros;
/// zero is the empty digit list, positive, with exponent 0.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    /// Zero, which has a single representation.
    fn zero() -> Self {
        Self {
            negative: false,
            digits: Vec::new(),
            exponent: 0,
        }
    }

    /// The value `(-1)^negative × digits × 10^exponent`, normalised.
    fn new(negative: bool, mut digits: Vec<u8>, mut exponent: i64) -> Self {
        debug_assert!(digits.iter().all(|&d| d <= 9), "digits are 0..=9");
        let trailing = digits.iter().rev().take_while(|&&d| d == 0).count();
        digits.truncate(digits.len() - trailing);
        exponent += len_i64(trailing);
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        if digits.is_empty() {
            return Self::zero();
        }
        Self {
            negative,
            digits,
            exponent,
        }
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// The smallest `k` with `|self| < 10^k`; a non-zero value is also at least 10^(k-1).
    fn magnitude_bound(&self) -> i64 {
        self.exponent + len_i64(self.digits.len())
    }

    /// Whether a `long double` overflows on this value.
    fn is_too_large(&self) -> bool {
        !self.is_zero() && self.magnitude_bound() > MAX_MAGNITUDE_EXP
    }

    /// Whether a `long double` underflows on this value.
    fn is_too_small(&self) -> bool {
        !self.is_zero() && self.magnitude_bound() <= MIN_MAGNITUDE_EXP
    }

    /// Reads a float the way `INCRBYFLOAT` does, or `None` if Redis would refuse it.
    fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > MAX_INPUT_LEN {
            return None;
        }
        let (negative, unsigned) = split_sign(bytes);
        let (mantissa, exponent_part) =
            match unsigned.iter().position(|&b| matches!(b, b'e' | b'E')) {
                Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
                None => (unsigned, None),
            };
        let (integer, fraction) = match mantissa.iter().position(|&b| b == b'.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, &[][..]),
        };
        if (integer.is_empty() && fraction.is_empty())
            || !all_digits(integer)
            || !all_digits(fraction)
        {
            return None;
        }
        let exponent = match exponent_part {
            Some(part) => parse_exponent(part)?,
            None => 0,
        };
        let digits = integer.iter().chain(fraction).map(|&b| b - b'0').collect();
        let value = Self::new(negative, digits, exponent - len_i64(fraction.len()));
        (!value.is_too_large() && !value.is_too_small()).then_some(value)
    }

    /// The exact sum. Both operands must be in the `long double` range, which bounds the
    /// work by their digit counts plus the ~10,000 decimal orders that range spans.
    fn add(&self, other: &Self) -> Self {
        debug_assert!(!self.is_too_large() && !self.is_too_small());
        debug_assert!(!other.is_too_large() && !other.is_too_small());
        if self.is_zero() {
            return other.clone();
        }
        if other.is_zero() {
            return self.clone();
        }
        let low = self.exponent.min(other.exponent);
        let high = self.magnitude_bound().max(other.magnitude_bound());
        let width =
            usize::try_from(high - low).expect("in-range operands span a few thousand digits");
        let a = self.little_endian_digits(low, width);
        let b = other.little_endian_digits(low, width);
        if self.negative == other.negative {
            return Self::from_little_endian(self.negative, add_digits(&a, &b), low);
        }
        match compare_digits(&a, &b) {
            Ordering::Greater => Self::from_little_endian(self.negative, sub_digits(&a, &b), low),
            Ordering::Less => Self::from_little_endian(other.negative, sub_digits(&b, &a), low),
            Ordering::Equal => Self::zero(),
        }
    }

    /// The digits as multiples of 10^`low`, least significant first, padded with zeros to
    /// `width` places (one more for a carry).
    fn little_endian_digits(&self, low: i64, width: usize) -> Vec<u8> {
        let offset = usize::try_from(self.exponent - low).expect("low is the smaller exponent");
        let mut out = vec![0; width + 1];
        for (slot, &digit) in out[offset..].iter_mut().zip(self.digits.iter().rev()) {
            *slot = digit;
        }
        out
    }

    /// The value `(-1)^negative × digits × 10^exponent` for digits least significant first.
    fn from_little_endian(negative: bool, mut digits: Vec<u8>, exponent: i64) -> Self {
        digits.reverse();
        Self::new(negative, digits, exponent)
    }

    /// The value rounded to `places` digits after the point, ties to even.
    fn round_to_places(self, places: i64) -> Self {
        let lowest_kept = -places;
        if self.exponent >= lowest_kept {
            return self;
        }
        let dropped_count =
            usize::try_from(lowest_kept - self.exponent).expect("exponent is below lowest_kept");
        let Some(split) = self.digits.len().checked_sub(dropped_count) else {
            // Every digit, and at least one zero before them, falls below the last place
            // kept: the value is under half of that place, so it rounds to zero.
            return Self::zero();
        };
        let (kept, dropped) = self.digits.split_at(split);
        debug_assert!(dropped.last().is_some_and(|&d| d != 0), "no trailing zeros");
        // Without trailing zeros, any digit after the first dropped one makes it non-zero.
        let beyond_half = dropped.len() > 1;
        let kept_is_odd = kept.last().is_some_and(|&d| d % 2 == 1);
        let round_up = match dropped.first() {
            Some(&first) => first > 5 || (first == 5 && (beyond_half || kept_is_odd)),
            None => false,
        };
        let mut kept = kept.to_vec();
        if round_up {
            increment_digits(&mut kept);
        }
        Self::new(self.negative, kept, lowest_kept)
    }

    /// Positional notation: no exponent, no `+`, no superfluous zeros, `0` for zero.
    fn to_bytes(&self) -> Vec<u8> {
        if self.is_zero() {
            return b"0".to_vec();
        }
        let ascii = |digits: &[u8]| digits.iter().map(|&d| b'0' + d).collect::<Vec<u8>>();
        let mut out = Vec::new();
        if self.negative {
            out.push(b'-');
        }
        if let Ok(zeros) = usize::try_from(self.exponent) {
            out.extend(ascii(&self.digits));
            out.resize(out.len() + zeros, b'0');
            return out;
        }
        let fraction_len = usize::try_from(-self.exponent).expect("exponent is negative here");
        match self.digits.len().checked_sub(fraction_len) {
            Some(integer_len) if integer_len > 0 => {
                let (integer, fraction) = self.digits.split_at(integer_len);
                out.extend(ascii(integer));
                out.push(b'.');
                out.extend(ascii(fraction));
            }
            _ => {
                out.extend_from_slice(b"0.");
                out.resize(out.len() + fraction_len - self.digits.len(), b'0');
                out.extend(ascii(&self.digits));
            }
        }
        out
    }
}

/// A length as a signed count of decimal places.
fn len_i64(len: usize) -> i64 {
    i64::try_from(len).expect("slice lengths fit in isize, hence in i64")
}

/// Whether a leading `-` is present, and the bytes after any leading `+` or `-`.
fn split_sign(bytes: &[u8]) -> (bool, &[u8]) {
    match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    }
}

fn all_digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

/// Reads the part after `e`: an optional sign and at least one digit. Magnitudes past
/// [`EXPONENT_CAP`] are clamped to it, which keeps their verdict (out of range, or zero
/// for a zero mantissa) without any overflow.
fn parse_exponent(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = split_sign(bytes);
    if digits.is_empty() || !all_digits(digits) {
        return None;
    }
    let magnitude = digits.iter().fold(0_i64, |acc, &b| {
        (acc * 10 + i64::from(b - b'0')).min(EXPONENT_CAP)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// Digit-wise sum of two equally long little-endian numbers whose top place is zero.
fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    debug_assert_eq!(a.len(), b.len());
    let mut carry = 0;
    let sum = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let total = x + y + carry;
            carry = total / 10;
            total % 10
        })
        .collect();
    assert_eq!(carry, 0, "the spare top place absorbs the carry");
    sum
}

/// Digit-wise difference `a - b` of two equally long little-endian numbers, `a >= b`.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    debug_assert_eq!(a.len(), b.len());
    let mut borrow = 0;
    let difference = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let subtrahend = y + borrow;
            borrow = u8::from(x < subtrahend);
            x + 10 * borrow - subtrahend
        })
        .collect();
    assert_eq!(borrow, 0, "the caller ensures a >= b");
    difference
}

/// Compares two equally long little-endian numbers.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    debug_assert_eq!(a.len(), b.len());
    a.iter().rev().cmp(b.iter().rev())
}

/// Adds one unit in the last place to a most-significant-first digit list.
fn increment_digits(digits: &mut Vec<u8>) {
    for digit in digits.iter_mut().rev() {
        if *digit < 9 {
            *digit += 1;
            return;
        }
        *digit = 0;
    }
    digits.insert(0, 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn incr(current: &str, increment: &str) -> Result<String, FloatError> {
        incr_by_float(current.as_bytes(), increment.as_bytes())
            .map(|out| String::from_utf8(out).expect("output is ASCII"))
    }

    fn ok(current: &str, increment: &str, expected: &str) {
        assert_eq!(
            incr(current, increment),
            Ok(expected.to_owned()),
            "{current} + {increment}"
        );
    }

    #[test]
    fn redis_reference_outputs() {
        ok("0", "0.1", "0.1");
        ok("0.1", "0.2", "0.3");
        ok("123.456", "0.2", "123.656");
        ok("0", "5.0e3", "5000");
        ok("0", "3.0", "3");
        ok("0", "-0.0", "0");
        ok("0", "1.2345678901234567", "1.2345678901234567");
        ok("1.2345678901234567", "0.2", "1.4345678901234567");
        ok("0", "0.00000000000000001", "0.00000000000000001");
        ok("0.00000000000000001", "0.2", "0.20000000000000001");
        ok("0", "0.000000000000000001", "0");
        ok("0", "1e-20", "0");
        ok("10.5", "0.1", "10.6");
        ok("5000", "0.2", "5000.2");
        ok("0", "1e30", "1000000000000000000000000000000");
        ok(
            "0.000000000000000004",
            "0.000000000000000004",
            "0.00000000000000001",
        );
        ok("-1.5", "1.5", "0");
        ok("-0.000000000000000001", "0", "0");
    }

    #[test]
    fn redis_reference_errors() {
        assert_eq!(incr("1", "abc"), Err(FloatError::NotAFloat));
        assert_eq!(incr("abc", "1"), Err(FloatError::NotAFloat));
        assert_eq!(incr("1", " 1"), Err(FloatError::NotAFloat));
        assert_eq!(incr("1", "inf"), Err(FloatError::NotAFloat));
        assert_eq!(incr("0", "1e4933"), Err(FloatError::NotAFloat));
        assert_eq!(incr("9e4932", "9e4932"), Err(FloatError::OutOfRange));
        assert_eq!(incr("0", "1e-4951"), Err(FloatError::NotAFloat));
    }

    #[test]
    fn accepted_syntax() {
        for s in [
            "5",
            "5.",
            ".5",
            "5.25",
            "+5",
            "-5",
            "+.5",
            "-5.",
            "007.5",
            "0",
            "-0",
            "+0",
            "0.0",
            "000",
            "1e5",
            "1E5",
            "1e+5",
            "1e-5",
            "1.5e3",
            ".5e1",
            "5.e1",
            "1e0005",
            "-1.5E-3",
            "0e999999999999999999999",
            "0e-999999999999999999999",
        ] {
            assert!(is_float(s.as_bytes()), "{s:?} should be accepted");
            assert!(incr("0", s).is_ok(), "{s:?} should be accepted");
            assert!(incr(s, "0").is_ok(), "{s:?} should be accepted");
        }
    }

    #[test]
    fn refused_syntax() {
        for s in [
            "", ".", "+", "-", "+.", "-.", "e5", ".e5", "5e", "5e+", "5e-", "5e+-1", "5e.5",
            "5e1.5", "5.5.5", "5..", "..5", "++5", "+-5", "--5", " 5", "5 ", "5\n", "\t5", "5 e1",
            "5e 1", "inf", "-inf", "+inf", "infinity", "nan", "NaN", "0x10", "0x1p3", "1_000",
            "1,5", "1e1e1", "5f", "5d", "١", "\u{0}", "5\u{0}",
        ] {
            assert!(!is_float(s.as_bytes()), "{s:?} should be refused");
            assert_eq!(incr("0", s), Err(FloatError::NotAFloat), "{s:?}");
            assert_eq!(incr(s, "0"), Err(FloatError::NotAFloat), "{s:?}");
        }
    }

    #[test]
    fn input_length_limit() {
        let longest = "1".repeat(MAX_INPUT_LEN);
        assert!(
            !is_float(longest.as_bytes()),
            "5119 ones is about 1.1e5118: too large"
        );
        let longest_zeros = "0".repeat(MAX_INPUT_LEN);
        assert!(is_float(longest_zeros.as_bytes()));
        let mut fraction = String::from("0.");
        fraction.push_str(&"1".repeat(MAX_INPUT_LEN - 2));
        assert!(is_float(fraction.as_bytes()));
        assert_eq!(incr(&fraction, "0"), Ok("0.11111111111111111".to_owned()));
        let too_long = "0".repeat(MAX_INPUT_LEN + 1);
        assert!(!is_float(too_long.as_bytes()));
        fraction.push('1');
        assert!(!is_float(fraction.as_bytes()));
    }

    #[test]
    fn range_limits() {
        assert!(is_float(b"9.99999999999999999999e4932"));
        assert!(is_float(b"-9.99999999999999999999e4932"));
        assert!(!is_float(b"10e4932"));
        assert!(!is_float(b"-1e4933"));
        assert!(is_float(b"1e-4950"));
        assert!(is_float(b"-1e-4950"));
        assert!(!is_float(b"9.9e-4951"));
        assert!(!is_float(b"1e999999999999999999999"));
        assert!(!is_float(b"-1e999999999999999999999"));
        assert!(!is_float(b"1e-999999999999999999999"));
        assert!(!is_float(b"0.0001e-4947"));
        assert!(is_float(b"1000e4929"));
        assert_eq!(incr("0", "1e-4950"), Ok("0".to_owned()));
        assert_eq!(incr("1e4932", "-1e-4950"), incr("1e4932", "0"));
    }

    #[test]
    fn sum_out_of_range() {
        assert_eq!(incr("5e4932", "5e4932"), Err(FloatError::OutOfRange));
        assert_eq!(incr("-9e4932", "-9e4932"), Err(FloatError::OutOfRange));
        assert_eq!(incr("9e4932", "-9e4932"), Ok("0".to_owned()));
        // Just below 10^4933, but rounding to 17 places carries up to 10^4933.
        let mut nearly = "9".repeat(4933);
        nearly.push('.');
        nearly.push_str(&"9".repeat(18));
        assert!(is_float(nearly.as_bytes()));
        assert_eq!(incr(&nearly, "0"), Err(FloatError::OutOfRange));
        let largest = format!("{}.{}", "9".repeat(4933), "9".repeat(17));
        assert_eq!(incr(&largest, "0"), Ok(largest.clone()));
    }

    #[test]
    fn large_output_is_positional() {
        let expected = format!("1{}", "0".repeat(4932));
        assert_eq!(incr("1e4932", "0"), Ok(expected.clone()));
        assert_eq!(incr(&expected, "0"), Ok(expected));
        assert_eq!(
            incr("-1.5e20", "0"),
            Ok("-150000000000000000000".to_owned())
        );
    }

    #[test]
    fn rounding_ties_to_even() {
        ok("0", "0.000000000000000005", "0");
        ok("0", "0.000000000000000015", "0.00000000000000002");
        ok("0", "0.000000000000000025", "0.00000000000000002");
        ok("0", "0.0000000000000000051", "0.00000000000000001");
        ok("0", "-0.000000000000000015", "-0.00000000000000002");
        ok("0", "-0.000000000000000005", "0");
        ok("0", "0.99999999999999999999", "1");
        ok("0", "-9.999999999999999995", "-10");
        ok("0", "0.000000000000000004999", "0");
    }

    #[test]
    fn output_shape() {
        ok("0", "+5", "5");
        ok("0", "007.500", "7.5");
        ok("0", ".5", "0.5");
        ok("0", "-.5", "-0.5");
        ok("0", "-0e5", "0");
        ok("1", "-1", "0");
        ok("0", "1.0e-3", "0.001");
        ok("0", "12345e-2", "123.45");
        ok("-3", "1", "-2");
        ok("3", "-5.25", "-2.25");
        ok("0.1", "-0.3", "-0.2");
    }

    /// A decimal string: up to 12 integer digits, up to 17 fraction digits, random sign,
    /// and sometimes an exponent.
    fn decimal_string() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["", "+", "-"]),
            prop::collection::vec(0_u8..10, 1..=12),
            prop::option::of(prop::collection::vec(0_u8..10, 0..=17)),
            prop::option::weighted(0.25, -20_i32..=20),
        )
            .prop_map(|(sign, integer, fraction, exponent)| {
                let text = |digits: &[u8]| {
                    digits
                        .iter()
                        .map(|d| char::from(b'0' + d))
                        .collect::<String>()
                };
                let mut s = String::from(sign);
                s.push_str(&text(&integer));
                if let Some(fraction) = fraction {
                    s.push('.');
                    s.push_str(&text(&fraction));
                }
                if let Some(exponent) = exponent {
                    s.push('e');
                    s.push_str(&exponent.to_string());
                }
                s
            })
    }

    /// Bytes that are mostly float-like, to reach deep into the parser.
    fn float_like_bytes() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = b"0123456789+-.eE 0019i".to_vec();
        prop::collection::vec(prop::sample::select(alphabet), 0..24)
    }

    fn negate(s: &str) -> String {
        match s.strip_prefix('-') {
            Some(rest) => rest.to_owned(),
            None => format!("-{}", s.strip_prefix('+').unwrap_or(s)),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn close_to_f64_sum(a in decimal_string(), b in decimal_string()) {
            let fa: f64 = a.parse().unwrap();
            let fb: f64 = b.parse().unwrap();
            let out = incr(&a, &b).unwrap();
            let got: f64 = out.parse().unwrap();
            // Relative to the operands, not the sum: cancellation makes f64's own sum
            // inexact relative to a small result.
            let scale = fa.abs().max(fb.abs());
            prop_assert!(
                (got - (fa + fb)).abs() <= 1e-12 * scale + 1e-15,
                "{a} + {b} = {out}, f64 says {}", fa + fb
            );
        }

        #[test]
        fn integers_match_i128(a in any::<i64>(), b in any::<i64>()) {
            let expected = (i128::from(a) + i128::from(b)).to_string();
            prop_assert_eq!(incr(&a.to_string(), &b.to_string()), Ok(expected));
        }

        #[test]
        fn round_trip_is_stable(a in decimal_string(), b in decimal_string()) {
            let out = incr(&a, &b).unwrap();
            prop_assert_eq!(incr(&out, "0"), Ok(out.clone()));
            prop_assert_eq!(incr("0", &out), Ok(out));
        }

        #[test]
        fn commutative(a in decimal_string(), b in decimal_string()) {
            prop_assert_eq!(incr(&a, &b), incr(&b, &a));
        }

        #[test]
        fn plus_negation_is_zero(x in decimal_string()) {
            prop_assert_eq!(incr(&x, &negate(&x)), Ok("0".to_owned()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            s in prop_oneof![prop::collection::vec(any::<u8>(), 0..32), float_like_bytes()],
            other in prop_oneof![Just(b"0".to_vec()), Just(b"-9e4932".to_vec()), float_like_bytes()],
        ) {
            let accepted = is_float(&s);
            match incr_by_float(b"0", &s) {
                Ok(_) => prop_assert!(accepted),
                Err(FloatError::NotAFloat) => prop_assert!(!accepted),
                Err(FloatError::OutOfRange) => {}
            }
            let _ = incr_by_float(&s, &other);
            let _ = incr_by_float(&other, &s);
        }
    }
}
