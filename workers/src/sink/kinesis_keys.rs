//! Object keys of a Kinesis source: the Kafka scheme ([`super::keys`]) with sequence numbers in
//! place of offsets.
//!
//! `{prefix}/{path}/{stream}+{shardId}+{firstSeq}+{lastSeq}.{ext}`, for example
//! `raw/clicks/dt=2024-02-29/clicks+shardId-000000000003+056-49590338271490256608559692538361571095921575989136588898+056-49590338….json`.
//!
//! A Kinesis sequence number is a decimal string of up to [`SEQUENCE_DIGITS`] digits (the API's
//! pattern is `0|([1-9]\d{0,128})`); today's are 56 digits, about 186 bits, so they fit
//! neither a `u64` nor a `u128`. They are kept as canonical digit strings
//! ([`SequenceNumber`]) and compared as numbers (shorter is smaller, then digit by digit). In
//! a name each is written as its digit count (three digits), `-`, and its digits: one shard's
//! names sort by sequence number as text, as Kafka's sort by offset, no valid sequence number
//! is refused, and a name with today's numbers stays well under the 255 bytes a local file
//! name may have (zero-padding to the API's 129 digits did not: the `file://` lake refused
//! every object). Kafka names carry offsets as 20 bare digits, so neither scheme parses the
//! other's names and both can share a prefix.
//!
//! Exactly once works as for Kafka (decision 0010): a flush names every object with its
//! whole range; on start the worker finds each shard's newest range
//! ([`newest_for_shard`]), reads exactly that range again, rewrites it and goes on after its
//! last sequence number.
//!
//! Dead letters: `{deadLetterPrefix}/{stream}+{shardId}+{seq}.json`, named by the flush's
//! first bad record, three fields so they are never taken for data objects.

use std::cmp::Ordering;
use std::fmt;

use super::keys::{Extension, KeyError, is_name, join};

/// Digits of a sequence number at most, as the Kinesis API allows.
pub const SEQUENCE_DIGITS: usize = 129;

/// Why a Kinesis key cannot be made or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardKeyError {
    /// A name or length problem shared with the Kafka scheme.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Not a sequence number.
    #[error("{0:?} is not a Kinesis sequence number (1 to {SEQUENCE_DIGITS} decimal digits)")]
    Sequence(String),
    /// A range whose first sequence number is after its last.
    #[error("sequence numbers {first}..={last} are no range: the first is after the last")]
    EmptyRange {
        /// The first sequence number.
        first: SequenceNumber,
        /// The last sequence number.
        last: SequenceNumber,
    },
}

/// A Kinesis sequence number: decimal digits without leading zeros (`0` for zero), ordered
/// as a number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// `text` as a sequence number; leading zeros (as in a padded name) are dropped.
    pub fn parse(text: &str) -> Result<Self, ShardKeyError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ShardKeyError::Sequence(text.to_owned()));
        }
        let digits = text.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        if digits.len() > SEQUENCE_DIGITS {
            return Err(ShardKeyError::Sequence(text.to_owned()));
        }
        Ok(Self(digits.to_owned()))
    }

    /// The digits, as Kinesis writes them.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as a name writes it: its digit count in three digits, `-`, its digits.
    fn in_name(&self) -> String {
        format!("{:03}-{}", self.0.len(), self.0)
    }

    /// The number at the start of `field` of a name, and what follows it; `None` unless the
    /// count matches the digits and they are canonical (as [`SequenceNumber::in_name`] writes).
    fn from_name(field: &str) -> Option<(Self, &str)> {
        let (count, rest) = field.split_at_checked(3)?;
        if !count.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (digits, after) = rest
            .strip_prefix('-')?
            .split_at_checked(count.parse().ok()?)?;
        let number = Self::parse(digits).ok()?;
        (number.0 == digits).then_some((number, after))
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.len(), &self.0).cmp(&(other.0.len(), &other.0))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream and one of its shards, checked once to fit in object names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamShard {
    stream: String,
    shard: String,
}

impl StreamShard {
    /// `stream` and `shard` (a shard id), if both are made of letters, digits, `.`, `_`, `-`.
    pub fn new(stream: &str, shard: &str) -> Result<Self, ShardKeyError> {
        for (what, value) in [("source", stream), ("partition", shard)] {
            if !is_name(value) {
                return Err(KeyError::InvalidName {
                    what,
                    value: value.to_owned(),
                }
                .into());
            }
        }
        Ok(Self {
            stream: stream.to_owned(),
            shard: shard.to_owned(),
        })
    }

    /// The shard id.
    pub fn shard(&self) -> &str {
        &self.shard
    }

    /// The key of the data object for the flush of `first..=last` whose records render `path`.
    pub fn object_key(
        &self,
        prefix: &str,
        path: &str,
        first: &SequenceNumber,
        last: &SequenceNumber,
        extension: Extension,
    ) -> Result<String, ShardKeyError> {
        if first > last {
            return Err(ShardKeyError::EmptyRange {
                first: first.clone(),
                last: last.clone(),
            });
        }
        let name = format!(
            "{}+{}+{}+{}.{extension}",
            self.stream,
            self.shard,
            first.in_name(),
            last.in_name()
        );
        Ok(join(&[prefix, path, &name])?)
    }

    /// The key of the dead-letter object of a flush whose first bad record is `sequence`.
    pub fn dead_letter_key(
        &self,
        dead_letter_prefix: &str,
        sequence: &SequenceNumber,
    ) -> Result<String, ShardKeyError> {
        let name = format!("{}+{}+{}.json", self.stream, self.shard, sequence.in_name());
        Ok(join(&[dead_letter_prefix, &name])?)
    }
}

/// A Kinesis data object's key, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedShardKey<'k> {
    /// The whole key (or file name) that was parsed.
    pub key: &'k str,
    /// The stream.
    pub stream: &'k str,
    /// The shard id.
    pub shard: &'k str,
    /// The flush's first sequence number.
    pub first: SequenceNumber,
    /// The flush's last sequence number.
    pub last: SequenceNumber,
    /// The format.
    pub extension: Extension,
}

impl<'k> ParsedShardKey<'k> {
    /// Read a key written by [`StreamShard::object_key`]; anything else (a Kafka object, a
    /// dead letter, a foreign file) is an error.
    pub fn parse(key: &'k str) -> Result<Self, ShardKeyError> {
        let name = key.rsplit('/').next().unwrap_or(key);
        let not_ours = |problem| {
            ShardKeyError::Key(KeyError::NotAnObjectName {
                name: name.to_owned(),
                problem,
            })
        };
        let mut fields = name.splitn(4, '+');
        let (Some(stream), Some(shard), Some(first), Some(rest)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(not_ours("it has fewer than four fields separated by '+'"));
        };
        if !is_name(stream) || !is_name(shard) {
            return Err(not_ours("the stream or shard is not a Kinesis name"));
        }
        let malformed = || not_ours("a sequence number is not <count>-<digits>");
        let first = match SequenceNumber::from_name(first) {
            Some((first, "")) => first,
            _ => return Err(malformed()),
        };
        let (last, dot_extension) = SequenceNumber::from_name(rest).ok_or_else(malformed)?;
        let extension = dot_extension
            .strip_prefix('.')
            .and_then(|e| Extension::ALL.into_iter().find(|x| x.as_str() == e))
            .ok_or_else(|| not_ours("the extension is not json, json.gz, json.zst or parquet"))?;
        if first > last {
            return Err(not_ours("the first sequence number is after the last"));
        }
        Ok(Self {
            key,
            stream,
            shard,
            first,
            last,
            extension,
        })
    }
}

/// The newest data object of `shard` of `stream` among `keys` (a listing of the destination):
/// the one with the highest last sequence number; among equals the widest range, then the
/// greatest key, so the listing's order does not matter. Everything else is skipped.
pub fn newest_for_shard<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    stream: &str,
    shard: &str,
) -> Option<ParsedShardKey<'k>> {
    keys.into_iter()
        .filter_map(|key| ParsedShardKey::parse(key).ok())
        .filter(|parsed| parsed.stream == stream && parsed.shard == shard)
        .max_by(|a, b| {
            (&a.last, std::cmp::Reverse(&a.first), a.key).cmp(&(
                &b.last,
                std::cmp::Reverse(&b.first),
                b.key,
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::keys::{MAX_KEY_BYTES, ParsedKey, SourcePartition};

    const SHARD: &str = "shardId-000000000003";
    // Real sequence numbers: 56 digits.
    const A: &str = "49680664268081915310581856490858768110798048322245361666";
    const B: &str = "49680664268081915310581856490858768110798048322245361667";
    const C: &str = "49680664269196952570508387647934345098610851768369676322";

    fn seq(text: &str) -> SequenceNumber {
        SequenceNumber::parse(text).unwrap()
    }

    fn shard() -> StreamShard {
        StreamShard::new("clicks", SHARD).unwrap()
    }

    fn key(path: &str, first: &str, last: &str) -> String {
        shard()
            .object_key(
                "raw/clicks",
                path,
                &seq(first),
                &seq(last),
                Extension::JsonGzip,
            )
            .unwrap()
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(seq("9") < seq("10"));
        assert!(seq(A) < seq(B) && seq(B) < seq(C));
        assert_eq!(seq("000123"), seq("123"));
        assert_eq!(seq("0000").as_str(), "0");
        let largest = "9".repeat(SEQUENCE_DIGITS);
        assert!(seq(&largest) > seq(C));
        for bad in ["", "12a", "-1", " 1", &"9".repeat(SEQUENCE_DIGITS + 1)] {
            assert_eq!(
                SequenceNumber::parse(bad),
                Err(ShardKeyError::Sequence(bad.to_owned()))
            );
        }
    }

    #[test]
    fn object_keys_carry_sequence_numbers_with_their_digit_count() {
        let key = key("dt=2024-02-29", A, C);
        assert_eq!(
            key,
            format!("raw/clicks/dt=2024-02-29/clicks+{SHARD}+056-{A}+056-{C}.json.gz")
        );
        assert!(key.len() < MAX_KEY_BYTES);
        // A local file name has at most 255 bytes: today's numbers leave room for a stream
        // name of 64 characters and the upload's temporary suffix.
        let long_stream = StreamShard::new(&"s".repeat(64), SHARD).unwrap();
        let name = long_stream
            .object_key("", "", &seq(A), &seq(C), Extension::JsonZstd)
            .unwrap();
        assert!(name.len() + "#1".len() < 255, "{} bytes", name.len());
        let largest = seq(&"9".repeat(SEQUENCE_DIGITS));
        let widest = shard()
            .object_key("raw", "", &seq("0"), &largest, Extension::Parquet)
            .unwrap();
        assert_eq!(ParsedShardKey::parse(&widest).unwrap().last, largest);
        let parsed = ParsedShardKey::parse(&key).unwrap();
        assert_eq!(
            (parsed.stream, parsed.shard, parsed.extension),
            ("clicks", SHARD, Extension::JsonGzip)
        );
        assert_eq!((parsed.first, parsed.last), (seq(A), seq(C)));
        let empty_prefix = shard()
            .object_key("", "", &seq("0"), &seq("0"), Extension::Parquet)
            .unwrap();
        assert_eq!(
            empty_prefix,
            "clicks+shardId-000000000003+001-0+001-0.parquet"
        );
        assert!(ParsedShardKey::parse(&empty_prefix).is_ok());
        // Only the canonical form is read: the count must match, no leading zeros, no padding.
        for field in ["056-1", "002-01", "01-5", "x01-5", "0015", "129-"] {
            let name = format!("clicks+{SHARD}+{field}+001-5.json");
            assert!(ParsedShardKey::parse(&name).is_err(), "{name}");
        }
        let padded = format!("clicks+{SHARD}+{}+001-5.json", "0".repeat(129));
        assert!(ParsedShardKey::parse(&padded).is_err());
    }

    #[test]
    fn invalid_names_and_ranges_are_refused() {
        assert!(matches!(
            StreamShard::new("a+b", SHARD),
            Err(ShardKeyError::Key(KeyError::InvalidName {
                what: "source",
                ..
            }))
        ));
        assert!(StreamShard::new("clicks", "shard/1").is_err());
        assert!(matches!(
            shard().object_key("", "", &seq(C), &seq(A), Extension::Json),
            Err(ShardKeyError::EmptyRange { .. })
        ));
        let long_prefix = "p".repeat(950);
        assert!(matches!(
            shard().object_key(&long_prefix, "", &seq(A), &seq(A), Extension::Json),
            Err(ShardKeyError::Key(KeyError::TooLong { .. }))
        ));
    }

    #[test]
    fn kafka_and_kinesis_names_never_parse_as_each_other() {
        let kafka = SourcePartition::new("clicks", "3")
            .unwrap()
            .object_key("raw", "", 5..=9, Extension::Json)
            .unwrap();
        let kinesis = key("", A, B);
        assert!(ParsedShardKey::parse(&kafka).is_err());
        assert!(ParsedKey::parse(&kinesis).is_err());
        let dead = shard()
            .dead_letter_key("raw/_dead_letter", &seq(A))
            .unwrap();
        assert_eq!(
            dead,
            format!("raw/_dead_letter/clicks+shardId-000000000003+056-{A}.json")
        );
        assert!(ParsedShardKey::parse(&dead).is_err());
        for foreign in [
            "raw/_SUCCESS",
            "a+b+c+d.json",
            &kinesis.replace(".json.gz", ".csv"),
        ] {
            assert!(ParsedShardKey::parse(foreign).is_err(), "{foreign}");
        }
    }

    #[test]
    fn names_of_one_shard_sort_by_sequence_number() {
        let mut keys = [
            key("", C, C),
            key("", "10", "99"),
            key("", "9", "9"),
            key("", A, B),
        ];
        keys.sort();
        let firsts: Vec<_> = keys
            .iter()
            .map(|k| ParsedShardKey::parse(k).unwrap().first)
            .collect();
        assert_eq!(firsts, vec![seq("9"), seq("10"), seq(A), seq(C)]);
    }

    #[test]
    fn the_newest_object_has_the_highest_last_sequence_number() {
        let other_shard = StreamShard::new("clicks", "shardId-000000000004")
            .unwrap()
            .object_key("raw/clicks", "", &seq(C), &seq(C), Extension::Json)
            .unwrap();
        let keys = [
            key("dt=2", A, C),
            key("dt=1", "10", "99"),
            key("dt=1", B, C),
            other_shard,
            "raw/clicks/_dead_letter/x.json".to_owned(),
        ];
        let newest = newest_for_shard(keys.iter().map(String::as_str), "clicks", SHARD).unwrap();
        // Two objects end at C: the wider range wins, whatever the order.
        assert_eq!((newest.first, newest.last), (seq(A), seq(C)));
        let reversed = newest_for_shard(keys.iter().rev().map(String::as_str), "clicks", SHARD);
        assert_eq!(reversed.unwrap().key, newest.key);
        assert!(newest_for_shard(keys.iter().map(String::as_str), "clicks", "shardId-9").is_none());
        assert!(newest_for_shard(keys.iter().map(String::as_str), "views", SHARD).is_none());
    }
}
