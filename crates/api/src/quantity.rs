//! `resource.Quantity` as upstream parses, stores and prints it.
//!
//! Upstream keeps a quantity as an int64 mantissa with a base-10 scale (falling back to an
//! arbitrary-precision decimal); we keep an `i128` mantissa with an `i32` scale, which covers
//! every value a parse can produce except absurdly long digit strings. What matters to clients
//! is reproduced exactly:
//!
//! - the grammar and its three error messages (`ParseQuantity`);
//! - rounding: every parsed value is rounded away from zero to nano (`0.1n` -> `1n`), BinarySI
//!   values are capped at 2^63-1, and a BinarySI value strictly between 0 and 1 becomes DecimalSI;
//! - the canonical form (`CanonicalizeBytes`): `0.5` -> `500m`, `1024Mi` -> `1Gi`, `1.5Gi` ->
//!   `1536Mi`, `0.1Gi` -> `107374182400m`; a quantity keeps the kind of suffix it was written
//!   with, so `1e3` stays `1e3` (DecimalExponent), not `1k`;
//! - the string cache: when the text a user wrote is already canonical upstream stores that
//!   very text (so `+1` and `1.500` come back as written). [`Quantity`]'s `Display` is what
//!   upstream serializes; [`Quantity::canonical`] ignores the cache.
//!
//! One deliberate difference: a DecimalSI value past `E` (10^18) or a BinarySI value past `Ei`
//! prints in exponent notation (`1e21`) as newer upstream does, where 1.33 dropped the suffix
//! and printed a wrong value (`1000E` -> `1`).

use std::cmp::Ordering;
use std::fmt;

/// Upstream's three parse errors, with their exact texts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

pub type Result<T, E = QuantityError> = std::result::Result<T, E>;

/// The suffix family a quantity was written with; it decides how the value is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi` (12 * 2^20)
    BinarySI,
    /// `12M` (12 * 10^6)
    DecimalSI,
}

/// Scale of one nano: parsed values never carry more precision than this.
const NANO: i32 = -9;
/// Upstream's `maxAllowed`: BinarySI values are capped at 2^63-1.
const MAX_ALLOWED: i128 = i64::MAX as i128;

/// A fixed-point number with the suffix family it was written in.
#[derive(Clone, Debug)]
pub struct Quantity {
    /// value = mantissa * 10^scale
    mantissa: i128,
    scale: i32,
    format: Format,
    /// Upstream's `s`: the text as written, kept when it was already canonical.
    cached: Option<String>,
}

impl Quantity {
    /// Upstream `ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity {
                mantissa: 0,
                scale: 0,
                format: Format::DecimalSI,
                cached: Some(s.to_string()),
            });
        }
        let parts = parse_quantity_string(s)?;
        let (base, exponent, format) =
            interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;

        let (precision, mut scale, mult): (i64, i64, i64) = match format {
            Format::DecimalExponent | Format::DecimalSI => (
                18 - (parts.num.len() + parts.denom.len()) as i64,
                i64::from(exponent),
                1,
            ),
            Format::BinarySI if exponent >= 0 && parts.denom.is_empty() => {
                let approx = (exponent as f32 * 3.0 / 10.0) as i64;
                (
                    15 - parts.num.len() as i64 - approx - 1,
                    0,
                    1i64 << exponent,
                )
            }
            Format::BinarySI => (-1, 0, 1),
        };

        if precision >= 0 {
            scale -= parts.denom.len() as i64;
            if scale >= i64::from(NANO) {
                let shifted = format!("{}{}", parts.num, parts.denom);
                let value: i64 = shifted.parse().map_err(|_| QuantityError::Numeric)?;
                if let Some(mut result) = value.checked_mul(mult) {
                    if !parts.positive {
                        result = -result;
                    }
                    let canonical_text = match format {
                        Format::BinarySI => exponent % 10 == 0 && (value & 0x07) != 0,
                        _ => {
                            scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
                        }
                    };
                    return Ok(Quantity {
                        mantissa: i128::from(result),
                        scale: scale as i32,
                        format,
                        cached: canonical_text.then(|| s.to_string()),
                    });
                }
            }
        }

        // The arbitrary-precision path: exact decimal, suffix folded in, rounded up to nano.
        let (mut mantissa, mut dscale) = parse_decimal(parts.value)?;
        if base == 10 {
            dscale = dscale
                .checked_add(i64::from(exponent))
                .ok_or(QuantityError::Numeric)?;
        } else {
            let factor = 1i128
                .checked_shl(exponent as u32)
                .ok_or(QuantityError::Numeric)?;
            mantissa = mantissa.checked_mul(factor).ok_or(QuantityError::Numeric)?;
        }
        let dscale = i32::try_from(dscale).map_err(|_| QuantityError::Numeric)?;
        let mut q = Quantity {
            mantissa,
            scale: dscale,
            format,
            cached: None,
        };
        if q.mantissa != 0 && q.scale < NANO {
            q.round_up_in_place(NANO);
        }
        if format == Format::BinarySI
            && q.cmp_value(&Quantity::int(MAX_ALLOWED)) == Ordering::Greater
        {
            q = Quantity::int(MAX_ALLOWED);
            q.format = Format::BinarySI;
        }
        if format == Format::BinarySI && q.cmp_value(&Quantity::int(-MAX_ALLOWED)) == Ordering::Less
        {
            q = Quantity::int(-MAX_ALLOWED);
            q.format = Format::BinarySI;
        }
        if q.format == Format::BinarySI && !q.is_zero() && q.abs_cmp_one() == Ordering::Less {
            q.format = Format::DecimalSI;
        }
        Ok(q)
    }

    /// A quantity as a JSON field holds it: a string (surrounding blanks are ignored, as
    /// upstream's `UnmarshalJSON` trims them) or a bare number.
    pub fn from_json(v: &serde_json::Value) -> Result<Quantity> {
        match v {
            serde_json::Value::String(s) => Quantity::parse(s.trim()),
            serde_json::Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => Err(QuantityError::FormatWrong),
        }
    }

    /// An integer quantity in DecimalSI.
    pub fn from_i64(v: i64) -> Quantity {
        Quantity::int(i128::from(v))
    }

    /// `value / 1000` in the given format (upstream `NewMilliQuantity`).
    pub fn from_milli(v: i64, format: Format) -> Quantity {
        Quantity {
            mantissa: i128::from(v),
            scale: -3,
            format,
            cached: None,
        }
    }

    fn int(v: i128) -> Quantity {
        Quantity {
            mantissa: v,
            scale: 0,
            format: Format::DecimalSI,
            cached: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        self.mantissa.signum() as i32
    }

    /// The value in units of 10^scale, rounded away from zero; saturates at the i64 bounds.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        let mut q = self.clone();
        q.round_up_in_place(scale);
        let diff = i64::from(q.scale) - i64::from(scale);
        let v = if diff <= 0 {
            Some(q.mantissa)
        } else {
            u32::try_from(diff)
                .ok()
                .and_then(|d| 10i128.checked_pow(d))
                .and_then(|p| q.mantissa.checked_mul(p))
        };
        match v {
            Some(v) => v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            None if q.mantissa < 0 => i64::MIN,
            None => i64::MAX,
        }
    }

    /// Upstream `Value()`: the integer value rounded up away from zero.
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// Upstream `MilliValue()`: `ceil(q * 1000)`.
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(-3)
    }

    /// Upstream `RoundUp`: rounds away from zero to the given scale (SetDefaults_ResourceList
    /// uses -3). Returns whether the value was already exact at that scale.
    pub fn round_up(&mut self, scale: i32) -> bool {
        if self.scale >= scale {
            return true;
        }
        self.cached = None;
        self.round_up_in_place(scale)
    }

    fn round_up_in_place(&mut self, scale: i32) -> bool {
        if self.scale >= scale {
            return true;
        }
        let diff = (i64::from(scale) - i64::from(self.scale)) as u32;
        let (quot, exact) = match 10i128.checked_pow(diff) {
            Some(p) => (self.mantissa / p, self.mantissa % p == 0),
            None => (0, self.mantissa == 0),
        };
        let quot = if exact {
            quot
        } else if self.mantissa < 0 {
            quot - 1
        } else {
            quot + 1
        };
        self.mantissa = quot;
        self.scale = scale;
        exact
    }

    /// Adds `other`; a zero quantity takes the format of what is added to it (upstream `Add`).
    pub fn add(&self, other: &Quantity) -> Quantity {
        self.combine(other, false)
    }

    /// Subtracts `other` (upstream `Sub`).
    pub fn sub(&self, other: &Quantity) -> Quantity {
        self.combine(other, true)
    }

    fn combine(&self, other: &Quantity, negate: bool) -> Quantity {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        let rhs = if negate {
            -other.mantissa
        } else {
            other.mantissa
        };
        let (a, b, scale) = align(self.mantissa, self.scale, rhs, other.scale);
        let (mantissa, scale) = match a.checked_add(b) {
            Some(m) => (m, scale),
            // Past i128: keep the magnitude at the coarser scale.
            None => {
                let s = self.scale.max(other.scale);
                let mut x = self.clone();
                x.round_up_in_place(s);
                let mut y = Quantity {
                    mantissa: rhs,
                    scale: other.scale,
                    format,
                    cached: None,
                };
                y.round_up_in_place(s);
                (x.mantissa.saturating_add(y.mantissa), s)
            }
        };
        Quantity {
            mantissa,
            scale,
            format,
            cached: None,
        }
    }

    /// The negated value (upstream `Neg`).
    pub fn neg(&self) -> Quantity {
        Quantity {
            mantissa: -self.mantissa,
            scale: self.scale,
            format: self.format,
            cached: None,
        }
    }

    fn cmp_value(&self, other: &Quantity) -> Ordering {
        let (sa, sb) = (self.mantissa.signum(), other.mantissa.signum());
        if sa != sb || sa == 0 {
            return sa.cmp(&sb);
        }
        // Same non-zero sign: align scales; an overflow means that side is larger in magnitude.
        let (hi_first, hi, hs, lo, ls) = if self.scale >= other.scale {
            (true, self.mantissa, self.scale, other.mantissa, other.scale)
        } else {
            (
                false,
                other.mantissa,
                other.scale,
                self.mantissa,
                self.scale,
            )
        };
        let diff = (i64::from(hs) - i64::from(ls)) as u32;
        let mag = match 10i128.checked_pow(diff).and_then(|p| hi.checked_mul(p)) {
            Some(h) => h.abs().cmp(&lo.abs()),
            None => Ordering::Greater,
        };
        let mag = if hi_first { mag } else { mag.reverse() };
        if sa > 0 { mag } else { mag.reverse() }
    }

    fn abs_cmp_one(&self) -> Ordering {
        let abs = Quantity {
            mantissa: self.mantissa.abs(),
            scale: self.scale,
            format: self.format,
            cached: None,
        };
        abs.cmp_value(&Quantity::int(1))
    }

    fn is_integer(&self) -> bool {
        let mut q = self.clone();
        q.round_up_in_place(0)
    }

    /// Upstream `CanonicalizeBytes`, ignoring any cached text.
    pub fn canonical(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI
            && (self.cmp_value(&Quantity::int(-1024)) == Ordering::Greater
                && self.cmp_value(&Quantity::int(1024)) == Ordering::Less
                || !self.is_integer())
        {
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let mut v = self.clone();
            v.round_up_in_place(0);
            let mut value = v.mantissa;
            if v.scale > 0 {
                match 10i128
                    .checked_pow(v.scale as u32)
                    .and_then(|p| value.checked_mul(p))
                {
                    Some(x) => value = x,
                    None => return self.decimal_string(Format::DecimalExponent),
                }
            }
            let mut exp = 0;
            while value.abs() >= 1024 && value % 1024 == 0 {
                value /= 1024;
                exp += 1;
            }
            let suffix = match exp {
                0 => "",
                1 => "Ki",
                2 => "Mi",
                3 => "Gi",
                4 => "Ti",
                5 => "Pi",
                6 => "Ei",
                _ => return self.decimal_string(Format::DecimalExponent),
            };
            return format!("{value}{suffix}");
        }
        self.decimal_string(format)
    }

    /// Mantissa with every factor of ten moved out, then the exponent lowered to a multiple
    /// of three (`AsCanonicalBytes`), followed by the suffix of the format.
    fn decimal_string(&self, format: Format) -> String {
        let mut m = self.mantissa;
        let mut exp = i64::from(self.scale);
        while m != 0 && m % 10 == 0 {
            m /= 10;
            exp += 1;
        }
        let mut digits = m.abs().to_string();
        while exp % 3 != 0 {
            digits.push('0');
            exp -= 1;
        }
        let sign = if m < 0 { "-" } else { "" };
        let suffix = match format {
            Format::DecimalSI => match exp {
                -9 => Some("n"),
                -6 => Some("u"),
                -3 => Some("m"),
                0 => Some(""),
                3 => Some("k"),
                6 => Some("M"),
                9 => Some("G"),
                12 => Some("T"),
                15 => Some("P"),
                18 => Some("E"),
                _ => None,
            }
            .map(str::to_string),
            _ => Some(if exp == 0 {
                String::new()
            } else {
                format!("e{exp}")
            }),
        };
        let suffix = suffix.unwrap_or_else(|| format!("e{exp}"));
        format!("{sign}{digits}{suffix}")
    }
}

/// Brings two (mantissa, scale) pairs to the smaller scale; on overflow returns them unaligned
/// at the larger scale with the finer one rounded up.
fn align(a: i128, sa: i32, b: i128, sb: i32) -> (i128, i128, i32) {
    let target = sa.min(sb);
    let up = |m: i128, s: i32| -> Option<i128> {
        let d = u32::try_from(i64::from(s) - i64::from(target)).ok()?;
        10i128.checked_pow(d).and_then(|p| m.checked_mul(p))
    };
    match (up(a, sa), up(b, sb)) {
        (Some(x), Some(y)) => (x, y, target),
        _ => {
            let s = sa.max(sb);
            let mut qa = Quantity {
                mantissa: a,
                scale: sa,
                format: Format::DecimalSI,
                cached: None,
            };
            let mut qb = Quantity {
                mantissa: b,
                scale: sb,
                format: Format::DecimalSI,
                cached: None,
            };
            qa.round_up_in_place(s);
            qb.round_up_in_place(s);
            (qa.mantissa, qb.mantissa, s)
        }
    }
}

impl fmt::Display for Quantity {
    /// What upstream serializes: the text as written when it was canonical, else the
    /// canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_value(other)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self> {
        Quantity::parse(s)
    }
}

struct Parts<'a> {
    positive: bool,
    /// sign, digits and point as written, without the suffix
    value: &'a str,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// Upstream `parseQuantityString`, byte for byte.
fn parse_quantity_string(s: &str) -> Result<Parts<'_>> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if let Some(&c) = b.first() {
        if c == b'-' {
            positive = false;
            pos += 1;
        } else if c == b'+' {
            pos += 1;
        }
    }
    let zero = |positive| Parts {
        positive,
        value: "0",
        num: "0",
        denom: "",
        suffix: "",
    };
    // strip leading zeros
    loop {
        if pos >= end {
            return Ok(zero(positive));
        }
        if b[pos] == b'0' {
            pos += 1;
        } else {
            break;
        }
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[num_start..pos];
    if pos >= end {
        return Ok(Parts {
            positive,
            value: s,
            num: if num.is_empty() { "0" } else { num },
            denom: "",
            suffix: "",
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let d_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[d_start..pos];
        if pos >= end {
            return Ok(Parts {
                positive,
                value: s,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Parts {
        positive,
        value,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// Upstream `quantitySuffixer.interpret`: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let si = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "n" => si(-9),
        "u" => si(-6),
        "m" => si(-3),
        "" => si(0),
        "k" => si(3),
        "M" => si(6),
        "G" => si(9),
        "T" => si(12),
        "P" => si(15),
        "E" => si(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let rest = &s[1..];
            // Go's strconv.ParseInt: optional sign, then at least one digit.
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let v: i64 = rest.parse().ok()?;
            if v > i64::from(i32::MAX) || v < -i64::from(i32::MAX) {
                return None;
            }
            Some((10, v as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// `[-+]digits[.digits]` to (mantissa, scale).
fn parse_decimal(v: &str) -> Result<(i128, i64)> {
    let (neg, rest) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(QuantityError::Numeric);
    }
    let mut m: i128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        if !c.is_ascii_digit() {
            return Err(QuantityError::Numeric);
        }
        m = m
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c - b'0')))
            .ok_or(QuantityError::Numeric)?;
    }
    Ok((if neg { -m } else { m }, -(frac.len() as i64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn stored_text_is_upstreams_serialization() {
        let table = [
            ("0", "0"),
            ("0n", "0"),
            ("0Ki", "0"),
            ("-0", "0"),
            ("1", "1"),
            ("+1", "+1"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("0.5", "500m"),
            (".5", "500m"),
            ("1.5", "1500m"),
            ("1.08", "1080m"),
            ("1.500", "1.500"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("1.5e3", "1500"),
            ("1000", "1k"),
            ("1000M", "1G"),
            ("2Gi", "2Gi"),
            ("1024Mi", "1Gi"),
            ("1500Mi", "1500Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("0.1Gi", "107374182400m"),
            ("0.5Ki", "512"),
            ("1025", "1025"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("3.001n", "4n"),
            ("0.9n", "1n"),
            ("0.00000012345", "124n"),
            ("9Ei", "9223372036854775807"),
            ("12E", "12E"),
            ("1.", "1."),
            ("1.G", "1.G"),
            ("100.035k", "100.035k"),
            ("100.0350k", "100035"),
            ("-100m", "-100m"),
            ("-1.5Gi", "-1536Mi"),
            ("50k", "50k"),
            ("40T", "40T"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("123Mi", "123Mi"),
            ("4000", "4k"),
            ("10800e-4", "1080e-3"),
        ];
        for (input, want) in table {
            assert_eq!(q(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn canonical_form_ignores_the_text_as_written() {
        for (input, want) in [
            ("+1", "1"),
            ("1.500", "1500m"),
            ("1e3", "1e3"),
            ("100m", "100m"),
        ] {
            assert_eq!(q(input).canonical(), want, "{input}");
        }
    }

    #[test]
    fn malformed_quantities_are_rejected_with_upstream_errors() {
        let table = [
            ("", QuantityError::FormatWrong),
            ("1.1.M", QuantityError::FormatWrong),
            ("1+1.0M", QuantityError::FormatWrong),
            ("0.1mi", QuantityError::Suffix),
            ("0.1am", QuantityError::FormatWrong),
            ("aoeu", QuantityError::FormatWrong),
            (".5i", QuantityError::Suffix),
            ("1i", QuantityError::Suffix),
            ("-3.01i", QuantityError::Suffix),
            ("-3.01e-", QuantityError::Suffix),
            ("1e4294967297", QuantityError::Suffix),
            (" 1", QuantityError::FormatWrong),
            ("1 ", QuantityError::FormatWrong),
            ("abc", QuantityError::FormatWrong),
            ("1x", QuantityError::FormatWrong),
        ];
        for (input, want) in table {
            assert_eq!(Quantity::parse(input).err(), Some(want), "{input:?}");
        }
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn parsed_values_match_upstream_table() {
        // (input, mantissa, scale, format) from upstream TestQuantityParse
        let table = [
            ("5n", 5, -9, Format::DecimalSI),
            ("8k", 8, 3, Format::DecimalSI),
            ("1E-3", 1, -3, Format::DecimalExponent),
            ("1.2e3", 12, 2, Format::DecimalExponent),
            ("1.3E+6", 13, 5, Format::DecimalExponent),
            ("0.0005k", 5, -1, Format::DecimalSI),
            ("0.5e-9", 1, -9, Format::DecimalExponent),
            ("1.1E-9", 2, -9, Format::DecimalExponent),
            ("0.0000000005", 1, -9, Format::DecimalSI),
            ("7Mi", 7 * 1024 * 1024, 0, Format::BinarySI),
            ("100.035Ki", 10243584, -2, Format::BinarySI),
            ("0.05Gi", 536870912, -1, Format::BinarySI),
            ("0.000000000001Ki", 2, -9, Format::DecimalSI),
            (".0001k", 100, -3, Format::DecimalSI),
            (
                "9223372036854775807Ki",
                i64::MAX as i128,
                0,
                Format::BinarySI,
            ),
        ];
        for (input, m, s, f) in table {
            let got = q(input);
            let want = Quantity {
                mantissa: m,
                scale: s,
                format: f,
                cached: None,
            };
            assert_eq!(got, want, "{input}");
            assert_eq!(got.format(), f, "{input}");
            let neg = q(&format!("-{input}"));
            assert_eq!(neg, want.neg(), "-{input}");
            assert_eq!(q(&format!("+{input}")), want, "+{input}");
        }
    }

    #[test]
    fn comparison_orders_by_value_across_suffixes() {
        assert_eq!(q("100m").cmp(&q("50m")), Ordering::Greater);
        assert_eq!(q("10000T").cmp(&q("100Gi")), Ordering::Greater);
        assert_eq!(q("1Gi").cmp(&q("1024Mi")), Ordering::Equal);
        assert_eq!(q("1").cmp(&q("1000m")), Ordering::Equal);
        assert_eq!(q("-1").cmp(&q("1m")), Ordering::Less);
        assert_eq!(q("1e30").cmp(&q("1n")), Ordering::Greater);
        assert_eq!(q("-1e30").cmp(&q("-1n")), Ordering::Less);
        assert!(q("500Mi") < q("1Gi"));
    }

    #[test]
    fn values_round_up_away_from_zero() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("1Ki").value(), 1024);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("2Gi").milli_value(), 2 * 1024 * 1024 * 1024 * 1000);
        let table = [
            ("9.01", -3, "9010m", true),
            ("9.01", -1, "9100m", false),
            ("9.01", 0, "10", false),
            ("-9.01", 0, "-10", false),
        ];
        for (input, scale, want, exact) in table {
            let mut v = q(input);
            assert_eq!(v.round_up(scale), exact, "{input}");
            assert_eq!(v.to_string(), want, "{input}");
        }
        let mut keeps = q("+1");
        assert!(keeps.round_up(-3));
        assert_eq!(keeps.to_string(), "+1");
    }

    #[test]
    fn arithmetic_keeps_formats_as_upstream() {
        assert_eq!(q("100m").add(&q("0")).to_string(), "100m");
        assert_eq!(q("0").add(&q("1Gi")).to_string(), "1Gi");
        assert_eq!(q("1Gi").sub(&q("512Mi")).to_string(), "512Mi");
        assert_eq!(q("0").sub(&q("100m")).to_string(), "-100m");
        assert_eq!(q("1").add(&q("500m")).to_string(), "1500m");
        assert_eq!(q("901e-2").neg().to_string(), "-9010e-3");
        assert_eq!(
            Quantity::from_milli(1024, Format::BinarySI).to_string(),
            "1024m"
        );
        assert_eq!(
            Quantity::from_milli(1000, Format::DecimalSI).to_string(),
            "1"
        );
    }

    #[test]
    fn json_numbers_and_padded_strings_parse() {
        use serde_json::json;
        assert_eq!(
            Quantity::from_json(&json!(" 1")).map(|q| q.to_string()),
            Ok("1".into())
        );
        assert_eq!(
            Quantity::from_json(&json!(10)).map(|q| q.to_string()),
            Ok("10".into())
        );
        assert_eq!(
            Quantity::from_json(&json!(0.5)).map(|q| q.to_string()),
            Ok("500m".into())
        );
        assert_eq!(
            Quantity::from_json(&json!(-1)).map(|q| q.to_string()),
            Ok("-1".into())
        );
        assert!(Quantity::from_json(&json!(true)).is_err());
    }

    #[test]
    fn huge_values_print_in_exponent_notation_instead_of_losing_magnitude() {
        assert_eq!(q("1000E").to_string(), "1e21");
        assert_eq!(
            q("12345678901234567890").to_string(),
            "12345678901234567890"
        );
    }
}
