//! The SQL functions the batch worker adds to DataFusion's own. Each is listed, with its exact
//! rules, in `docs/batch.md`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// The time zone of every timestamp the worker hands to SQL.
pub const UTC: &str = "UTC";

/// The type of `scheduled_time()` and of `Timestamp` columns: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// Register every function of this module in `ctx`, with `scheduled_time()` returning
/// `scheduled_micros` (microseconds since the Unix epoch).
pub fn register(ctx: &SessionContext, scheduled_micros: i64) {
    ctx.register_udf(ScalarUDF::from(ScheduledTime::new(scheduled_micros)));
    ctx.register_udf(ScalarUDF::from(ParseCount::new()));
}

/// `scheduled_time()`: the scheduled time of the run, `TIMESTAMP` (µs, UTC), the same value in
/// every row and every step — so a retried or backfilled run reads the same partitions as the
/// original would have, e.g. yesterday's:
/// `WHERE dt = CAST(date_trunc('day', scheduled_time()) - INTERVAL '1 day' AS DATE)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ScheduledTime {
    micros: i64,
    signature: Signature,
}

impl ScheduledTime {
    /// The function for a run scheduled at `micros` since the Unix epoch.
    pub fn new(micros: i64) -> Self {
        Self {
            micros,
            signature: Signature::nullary(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ScheduledTime {
    fn name(&self) -> &str {
        "scheduled_time"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(timestamp_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
            Some(self.micros),
            Some(UTC.into()),
        )))
    }
}

/// `parse_count(text) -> BIGINT`: a follower count as the Pinterest records write it, as a
/// number. See [`parse_count`] for the rules.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ParseCount {
    signature: Signature,
}

impl ParseCount {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for ParseCount {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ParseCount {
    fn name(&self) -> &str {
        "parse_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = args.args.as_slice() else {
            return exec_err!("parse_count takes one argument, got {}", args.args.len());
        };
        match text {
            ColumnarValue::Scalar(value) => {
                let count = match value {
                    ScalarValue::Utf8(text)
                    | ScalarValue::Utf8View(text)
                    | ScalarValue::LargeUtf8(text) => text.as_deref().and_then(parse_count),
                    ScalarValue::Null => None,
                    other => return exec_err!("parse_count takes text, got {}", other.data_type()),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Int64(count)))
            }
            ColumnarValue::Array(array) => Ok(ColumnarValue::Array(parse_counts(array)?)),
        }
    }
}

fn parse_counts(array: &ArrayRef) -> Result<ArrayRef> {
    let text = cast(array, &DataType::Utf8)?;
    let counts: Int64Array = text
        .as_string::<i32>()
        .iter()
        .map(|value| value.and_then(parse_count))
        .collect();
    debug_assert_eq!(counts.len(), array.len());
    Ok(Arc::new(counts))
}

/// A count written as digits with an optional decimal fraction and an optional suffix — `k`
/// (thousand), `M` (million) or `B` (billion), either case — such as `"640"`, `"3k"`,
/// `"1.5M"`; surrounding spaces are ignored. The result is rounded to the nearest integer
/// (`"1.2345k"` → 1235). Anything else — the placeholder `"User Info Error"`, an empty string,
/// a sign, a number too large for `BIGINT` — is `None` (SQL NULL), so a bad value never fails
/// a run.
pub fn parse_count(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, multiplier) = match text.char_indices().last()? {
        (at, 'k' | 'K') => (&text[..at], 1_000),
        (at, 'm' | 'M') => (&text[..at], 1_000_000),
        (at, 'b' | 'B') => (&text[..at], 1_000_000_000),
        _ => (text, 1),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if number.ends_with('.') {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let scaled_whole = whole.checked_mul(multiplier)?;
    if fraction.is_empty() {
        return Some(scaled_whole);
    }
    // The fraction in the same unit, rounded half up: "1.2345" k → 234.5 → 235.
    let digits = fraction.len().min(18) as u32;
    let fraction: i128 = fraction[..digits as usize].parse().ok()?;
    let scale = 10_i128.pow(digits);
    let scaled_fraction = (fraction * i128::from(multiplier) * 2 + scale) / (2 * scale);
    scaled_whole.checked_add(i64::try_from(scaled_fraction).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_as_the_records_write_them() {
        assert_eq!(parse_count("640"), Some(640));
        assert_eq!(parse_count("0"), Some(0));
        assert_eq!(parse_count("3k"), Some(3_000));
        assert_eq!(parse_count("3K"), Some(3_000));
        assert_eq!(parse_count("1M"), Some(1_000_000));
        assert_eq!(parse_count("1.5M"), Some(1_500_000));
        assert_eq!(parse_count("2.5k"), Some(2_500));
        assert_eq!(parse_count("1.2345k"), Some(1_235));
        assert_eq!(parse_count("1.2344k"), Some(1_234));
        assert_eq!(parse_count("2B"), Some(2_000_000_000));
        assert_eq!(parse_count(" 12k "), Some(12_000));
    }

    #[test]
    fn anything_else_is_null() {
        for text in [
            "User Info Error",
            "",
            "  ",
            "k",
            "1.k",
            ".5k",
            "-3",
            "+3",
            "3 k",
            "3kk",
            "1,000",
            "3x",
            "99999999999999999999",
            "9999999999999999999k",
        ] {
            assert_eq!(parse_count(text), None, "{text:?}");
        }
    }

    #[tokio::test]
    async fn the_functions_work_in_sql() {
        let ctx = SessionContext::new();
        register(&ctx, 1_704_153_600_000_000);
        let batches = ctx
            .sql(
                "SELECT parse_count(c) AS n, CAST(scheduled_time() AS VARCHAR) AS t \
                 FROM (VALUES ('3k'), ('User Info Error'), (NULL)) AS v(c)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let counts = batches[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        assert_eq!(counts.iter().collect::<Vec<_>>(), [Some(3000), None, None]);
        let times = cast(batches[0].column(1), &DataType::Utf8).unwrap();
        assert_eq!(times.as_string::<i32>().value(0), "2024-01-02T00:00:00Z");
    }
}
