//! `resource.Quantity.String()`: the canonical form a quantity prints in ("1024Mi" is "1Gi",
//! "1.5k" is "1500", "0.5" is "500m"). Printers show quantities canonicalized whatever form the
//! object was written in.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

const DECIMAL_SUFFIXES: &[(&str, i32)] = &[
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

const BINARY_SUFFIXES: &[&str] = &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// The canonical string of a quantity; the input unchanged if it does not parse (upstream
/// would never have stored it) or does not fit in 128 bits.
pub(super) fn canonical(s: &str) -> String {
    canonicalize(s).unwrap_or_else(|| s.to_string())
}

fn canonicalize(s: &str) -> Option<String> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (int_digits, after_int) = rest.split_at(int_len);
    let (frac_digits, suffix) = match after_int.strip_prefix('.') {
        Some(after_dot) => {
            let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            after_dot.split_at(n)
        }
        None => ("", after_int),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let (format, mut exp10, binary_power) = parse_suffix(suffix)?;

    let digits: String = format!("{int_digits}{frac_digits}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mut mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    exp10 = exp10.checked_sub(i32::try_from(frac_digits.len()).ok()?)?;
    for _ in 0..binary_power {
        mantissa = mantissa.checked_mul(1024)?;
    }
    if mantissa == 0 {
        return Some("0".to_string());
    }
    // Quantities keep nanounit precision at most, rounding away from zero.
    if exp10 < -9 {
        let shift = u32::try_from(-9 - exp10).ok()?;
        mantissa = match 10u128.checked_pow(shift) {
            Some(div) => mantissa.div_ceil(div),
            None => 1,
        };
        exp10 = -9;
    }

    let mut format = format;
    if format == Format::BinarySi {
        if magnitude_below(mantissa, exp10, 1024) {
            format = Format::DecimalSi;
        } else if let Some(value) = integer_value(mantissa, exp10) {
            let mut value = value;
            let mut power = 0;
            while power < BINARY_SUFFIXES.len() - 1 && value.is_multiple_of(1024) {
                value /= 1024;
                power += 1;
            }
            let sign = if negative { "-" } else { "" };
            return Some(format!("{sign}{value}{}", BINARY_SUFFIXES[power]));
        } else {
            format = Format::DecimalSi;
        }
    }

    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exp10 += 1;
    }
    match exp10.rem_euclid(3) {
        1 => {
            mantissa = mantissa.checked_mul(10)?;
            exp10 -= 1;
        }
        2 => {
            mantissa = mantissa.checked_mul(100)?;
            exp10 -= 2;
        }
        _ => {}
    }
    let suffix = match format {
        Format::DecimalSi => DECIMAL_SUFFIXES
            .iter()
            .find(|(_, e)| *e == exp10)
            .map(|(s, _)| (*s).to_string())
            .unwrap_or_else(|| format!("e{exp10}")),
        _ if exp10 == 0 => String::new(),
        _ => format!("e{exp10}"),
    };
    let sign = if negative { "-" } else { "" };
    Some(format!("{sign}{mantissa}{suffix}"))
}

/// (format, power of ten, power of 1024) of a suffix.
fn parse_suffix(suffix: &str) -> Option<(Format, i32, u32)> {
    if let Some(i) = BINARY_SUFFIXES.iter().skip(1).position(|b| *b == suffix) {
        return Some((Format::BinarySi, 0, u32::try_from(i + 1).ok()?));
    }
    if let Some((_, e)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((Format::DecimalSi, *e, 0));
    }
    let exp = suffix.strip_prefix(['e', 'E'])?;
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Format::DecimalExponent, exp.parse().ok()?, 0))
}

/// Whether mantissa * 10^exp10 < limit.
fn magnitude_below(mantissa: u128, exp10: i32, limit: u128) -> bool {
    if exp10 >= 0 {
        match 10u128
            .checked_pow(exp10.unsigned_abs())
            .and_then(|p| mantissa.checked_mul(p))
        {
            Some(v) => v < limit,
            None => false,
        }
    } else {
        match 10u128
            .checked_pow(exp10.unsigned_abs())
            .and_then(|p| limit.checked_mul(p))
        {
            Some(scaled) => mantissa < scaled,
            None => true,
        }
    }
}

/// mantissa * 10^exp10 when it is a whole number that fits.
fn integer_value(mantissa: u128, exp10: i32) -> Option<u128> {
    let p = 10u128.checked_pow(exp10.unsigned_abs())?;
    if exp10 >= 0 {
        mantissa.checked_mul(p)
    } else if mantissa.is_multiple_of(p) {
        Some(mantissa / p)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn quantities_print_in_canonical_form() {
        let cases = [
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1.5Ki", "1536"),
            ("512Ki", "512Ki"),
            ("1000Ki", "1000Ki"),
            ("100", "100"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1.5k", "1500"),
            ("2000m", "2"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("0.1", "100m"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("10e3", "10e3"),
            ("1.5e3", "1500"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-1Gi", "-1Gi"),
            ("-500m", "-500m"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("1E", "1E"),
            ("5G", "5G"),
            ("abc", "abc"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "canonical({input})");
        }
    }
}
