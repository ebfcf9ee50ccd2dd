//! Durations as the CRDs write them (`maxAge`): one or more `<digits><unit>` with
//! the units `ms`, `s`, `m` and `h`, e.g. `90s`, `1m30s` or `250ms` — the schema's pattern
//! `^([0-9]+(ms|s|m|h))+$`. Parts add up, so `1m90s` is 2m30s.

use std::time::Duration;

/// Why a duration string does not parse. The message quotes the string and says what to write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration; write one such as 90s, 1m30s or 250ms")]
    Empty,
    /// A unit (or anything else) where a number must be.
    #[error("invalid duration {input:?}: expected a number at {rest:?}")]
    MissingNumber {
        /// The whole string.
        input: String,
        /// What follows the last complete part.
        rest: String,
    },
    /// A number without a unit, or with one this format does not have.
    #[error("invalid duration {input:?}: unknown unit {unit:?} after {number}; use ms, s, m or h")]
    BadUnit {
        /// The whole string.
        input: String,
        /// The number before the unit.
        number: String,
        /// What stands where the unit must be (empty at the end of the string).
        unit: String,
    },
    /// The sum does not fit in a [`Duration`].
    #[error("duration {input:?} is too long")]
    Overflow {
        /// The whole string.
        input: String,
    },
}

/// Parse a CRD duration string such as `1m30s` into a [`Duration`].
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let overflow = || DurationError::Overflow {
        input: input.to_owned(),
    };
    let mut total = Duration::ZERO;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(DurationError::MissingNumber {
                input: input.to_owned(),
                rest: rest.to_owned(),
            });
        }
        let (number, after_number) = rest.split_at(digits);
        // Only digits, so parsing fails only when the number is too big for a u64.
        let value: u64 = number.parse().map_err(|_| overflow())?;
        let letters = after_number.len()
            - after_number
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after_unit) = after_number.split_at(letters);
        let part = match unit {
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            _ => {
                // No letters: name the character that stands there instead.
                let shown = if unit.is_empty() {
                    after_number
                        .chars()
                        .next()
                        .map(String::from)
                        .unwrap_or_default()
                } else {
                    unit.to_owned()
                };
                return Err(DurationError::BadUnit {
                    input: input.to_owned(),
                    number: number.to_owned(),
                    unit: shown,
                });
            }
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or_else(overflow)?;
        rest = after_unit;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Duration {
        parse_duration(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn err(input: &str) -> String {
        parse_duration(input)
            .expect_err(&format!("{input} must not parse"))
            .to_string()
    }

    #[test]
    fn each_unit() {
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
    }

    #[test]
    fn zero_and_leading_zeros() {
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("007s"), Duration::from_secs(7));
    }

    #[test]
    fn parts_add_up_in_any_order() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h2m3s4ms"), Duration::from_millis(3_723_004));
        assert_eq!(ok("30s1m"), Duration::from_secs(90));
        assert_eq!(ok("1m90s"), Duration::from_secs(150));
        assert_eq!(ok("1s1s"), Duration::from_secs(2));
    }

    #[test]
    fn the_defaults_of_the_crds_parse() {
        assert_eq!(ok("60s"), Duration::from_secs(60));
    }

    #[test]
    fn milliseconds_are_not_minutes_then_seconds() {
        assert_eq!(ok("5ms"), Duration::from_millis(5));
        assert_eq!(ok("5m5s"), Duration::from_secs(305));
        assert_eq!(ok("5ms5s"), Duration::from_millis(5005));
    }

    #[test]
    fn empty() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            err(""),
            "empty duration; write one such as 90s, 1m30s or 250ms"
        );
    }

    #[test]
    fn a_bad_or_missing_unit_is_named() {
        assert_eq!(
            err("5d"),
            r#"invalid duration "5d": unknown unit "d" after 5; use ms, s, m or h"#
        );
        assert_eq!(
            err("1m5sec"),
            r#"invalid duration "1m5sec": unknown unit "sec" after 5; use ms, s, m or h"#
        );
        assert_eq!(
            err("1h30"),
            r#"invalid duration "1h30": unknown unit "" after 30; use ms, s, m or h"#
        );
        assert_eq!(
            err("1.5h"),
            r#"invalid duration "1.5h": unknown unit "." after 1; use ms, s, m or h"#
        );
        assert_eq!(
            err("10S"),
            r#"invalid duration "10S": unknown unit "S" after 10; use ms, s, m or h"#
        );
    }

    #[test]
    fn a_missing_number_is_named() {
        assert_eq!(
            err("s"),
            r#"invalid duration "s": expected a number at "s""#
        );
        assert_eq!(
            err("1m s"),
            r#"invalid duration "1m s": expected a number at " s""#
        );
        assert_eq!(
            err(" 1s"),
            r#"invalid duration " 1s": expected a number at " 1s""#
        );
        assert_eq!(
            err("-1s"),
            r#"invalid duration "-1s": expected a number at "-1s""#
        );
    }

    #[test]
    fn overflow() {
        let too_big_for_u64 = format!("{}0s", u64::MAX);
        assert_eq!(
            parse_duration(&too_big_for_u64),
            Err(DurationError::Overflow {
                input: too_big_for_u64.clone()
            })
        );
        assert_eq!(
            err("18446744073709551615h"),
            r#"duration "18446744073709551615h" is too long"#
        );
        assert!(matches!(
            parse_duration("18446744073709551615s1s"),
            Err(DurationError::Overflow { .. })
        ));
        assert_eq!(ok("18446744073709551615s"), Duration::from_secs(u64::MAX));
        assert_eq!(
            ok("18446744073709551615ms"),
            Duration::from_millis(u64::MAX)
        );
    }

    #[test]
    fn whatever_parses_matches_the_schema_pattern() {
        let pattern = regex::Regex::new(r"^([0-9]+(ms|s|m|h))+$").unwrap();
        for input in [
            "250ms",
            "90s",
            "1m30s",
            "2h",
            "0s",
            "1h2m3s4ms",
            "",
            "5d",
            "1h30",
            "s",
            "1.5h",
            "-1s",
            " 1s",
            "10S",
            "1m s",
        ] {
            assert_eq!(
                parse_duration(input).is_ok(),
                pattern.is_match(input),
                "{input:?}"
            );
        }
    }
}
