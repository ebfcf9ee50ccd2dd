//! Object keys: where a flush writes, and — read back from a listing — where a restarted worker
//! resumes.
//!
//! # Data objects
//!
//! `{prefix}/{path}/{source}+{partition}+{firstOffset}+{lastOffset}.{ext}`, for example
//! `raw/pin/dt=2024-02-29/pin+3+00000000000000001200+00000000000000001299.json.gz`. The prefix
//! is the destination's and the path the records' ([`super::template`]); either may be empty,
//! and the parts are joined with one `/` each. The extension follows the format: `json`,
//! `json.gz`, `json.zst` or `parquet` (Parquet compresses inside the file, so its name stays).
//!
//! `+` separates the fields because no source or partition can hold one: Kafka topic names are
//! `[a-zA-Z0-9._-]`, and so are Kinesis stream names and shard ids (`shardId-000000000001`);
//! [`SourcePartition::new`] refuses anything else. A name thus splits into exactly four fields
//! with no escaping, and the last two are digits. Kafka Connect's S3 sink separates its
//! `topic+partition+startOffset` names the same way.
//!
//! Offsets are zero-padded to [`OFFSET_DIGITS`] digits, enough for any `u64`, so the names of
//! one partition sort by offset as text, which is the order S3 lists keys in (unpadded,
//! `+999+` would sort after `+1000+`). Recovery does not depend on it, since
//! [`newest_for_partition`] compares numbers and a partition's objects are spread over many
//! paths; but with it the newest object of a partition in one path is the last one listed, a
//! listing can continue after a known object with `StartAfter`, and `aws s3 ls` shows a
//! partition in order.
//!
//! # Exactly once
//!
//! Names are deterministic, so a retried upload overwrites instead of duplicating. A flush
//! writes one object for each path its records render to, all named with the flush's range —
//! the first and last offsets the flush covers, not those of each object's own records — and
//! commits the offsets after the last upload. On start and on every partition assignment the
//! worker lists the prefix and finds the partition's newest range ([`newest_for_partition`]).
//! A crash may have cut that flush short between two of its objects, so the worker reads the
//! range again and writes it again: the same records render the same paths and names,
//! overwriting what is there and adding what is missing. It then goes on after the range's
//! last offset. A path depends on its record alone, never on the wall clock, which is why this
//! holds whichever trigger flushed.
//!
//! # Dead letters
//!
//! `{deadLetterPrefix}/{source}+{partition}+{offset}.json`: one object for each flush that had
//! bad records, named by the offset of its first bad record and holding all of them; it is
//! written before the flush's data objects. Whether a record is bad depends on the record and
//! the spec only, so after a crash the batch that comes to hold that first bad record starts
//! at or before it with only good records in between: it writes the same name, replacing the
//! interrupted attempt, and no bad record is recorded twice. A flush of bad records only writes
//! no data object, so a restart reads those records again and rewrites the same dead letter:
//! slower, still once. The name has three fields, not four, so a dead letter under the
//! destination prefix (the default `<prefix>/_dead_letter/`) is never taken for a data object.

use std::fmt;
use std::ops::RangeInclusive;

use tributary_crds::common::DataFormat;
use tributary_crds::sink::Compression;

/// Digits of an offset in an object name: `u64::MAX` has 20.
pub const OFFSET_DIGITS: usize = 20;

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a key cannot be made, or a name is not one of ours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// JSON lines with Snappy, which the CRD refuses too.
    #[error("Snappy compresses Parquet pages only; JSON lines take Gzip, Zstd or None")]
    SnappyJson,
    /// A source or partition that could make a name ambiguous.
    #[error(
        "{what} {value:?} cannot be part of an object name: use only letters, digits, '.', '_' and '-', as Kafka topics and Kinesis streams and shards do"
    )]
    InvalidName {
        /// `source` or `partition`.
        what: &'static str,
        /// What it is.
        value: String,
    },
    /// A range whose first offset is after its last.
    #[error("offsets {first}..={last} are no range: the first is after the last")]
    EmptyRange {
        /// The first offset.
        first: u64,
        /// The last offset.
        last: u64,
    },
    /// A key longer than S3 accepts.
    #[error(
        "the object key would be {bytes} bytes, more than S3's {MAX_KEY_BYTES}; shorten the prefix"
    )]
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// A listed key that is not a data object (a dead letter, a foreign file).
    #[error(
        "{name:?} is not a data object name (source+partition+firstOffset+lastOffset.ext): {problem}"
    )]
    NotAnObjectName {
        /// The key's last segment.
        name: String,
        /// What does not fit.
        problem: &'static str,
    },
}

/// The extension of a data object, which names its format and compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    /// JSON lines.
    Json,
    /// JSON lines, gzip-compressed.
    JsonGzip,
    /// JSON lines, Zstandard-compressed.
    JsonZstd,
    /// Parquet, with any page compression.
    Parquet,
}

impl Extension {
    pub(crate) const ALL: [Self; 4] = [Self::Json, Self::JsonGzip, Self::JsonZstd, Self::Parquet];

    /// The extension of objects in `format` with `compression` (`spec.format`).
    pub fn for_format(
        format: DataFormat,
        compression: Option<Compression>,
    ) -> Result<Self, KeyError> {
        match (format, compression) {
            (DataFormat::Parquet, _) => Ok(Self::Parquet),
            (DataFormat::JsonLines, None | Some(Compression::None)) => Ok(Self::Json),
            (DataFormat::JsonLines, Some(Compression::Gzip)) => Ok(Self::JsonGzip),
            (DataFormat::JsonLines, Some(Compression::Zstd)) => Ok(Self::JsonZstd),
            (DataFormat::JsonLines, Some(Compression::Snappy)) => Err(KeyError::SnappyJson),
        }
    }

    /// The extension, without the leading dot.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::JsonGzip => "json.gz",
            Self::JsonZstd => "json.zst",
            Self::Parquet => "parquet",
        }
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source (topic or stream) and one of its partitions (or shards), checked once to fit in
/// object names: the part of every key that one partition's worker writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePartition {
    source: String,
    partition: String,
}

impl SourcePartition {
    /// `source` and `partition` (a Kafka partition number or a Kinesis shard id), if both are
    /// made of letters, digits, `.`, `_` and `-`.
    pub fn new(source: &str, partition: &str) -> Result<Self, KeyError> {
        for (what, value) in [("source", source), ("partition", partition)] {
            if !is_name(value) {
                return Err(KeyError::InvalidName {
                    what,
                    value: value.to_owned(),
                });
            }
        }
        Ok(Self {
            source: source.to_owned(),
            partition: partition.to_owned(),
        })
    }

    /// The key of the data object for the flush of `offsets` whose records render `path`.
    pub fn object_key(
        &self,
        prefix: &str,
        path: &str,
        offsets: RangeInclusive<u64>,
        extension: Extension,
    ) -> Result<String, KeyError> {
        let (first, last) = offsets.into_inner();
        if first > last {
            return Err(KeyError::EmptyRange { first, last });
        }
        let name = format!(
            "{}+{}+{first:0width$}+{last:0width$}.{extension}",
            self.source,
            self.partition,
            width = OFFSET_DIGITS
        );
        join(&[prefix, path, &name])
    }

    /// The key of the dead-letter object of a flush whose first bad record is at `offset`.
    pub fn dead_letter_key(
        &self,
        dead_letter_prefix: &str,
        offset: u64,
    ) -> Result<String, KeyError> {
        let name = format!(
            "{}+{}+{offset:0width$}.json",
            self.source,
            self.partition,
            width = OFFSET_DIGITS
        );
        join(&[dead_letter_prefix, &name])
    }
}

/// Whether `value` can be a source or partition in a name: what Kafka allows in topic names
/// and Kinesis in stream names and shard ids.
pub(crate) fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `parts` joined with one `/` each, without empty parts or slashes at their ends, so an empty
/// prefix or path (or one written with a trailing `/`) makes no `//`.
pub(crate) fn join(parts: &[&str]) -> Result<String, KeyError> {
    let key = parts
        .iter()
        .map(|part| part.trim_matches('/'))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong { bytes: key.len() });
    }
    Ok(key)
}

/// A data object's key, read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedKey<'k> {
    /// The whole key (or file name) that was parsed.
    pub key: &'k str,
    /// The topic or stream.
    pub source: &'k str,
    /// The partition or shard.
    pub partition: &'k str,
    /// The flush's first offset.
    pub first_offset: u64,
    /// The flush's last offset.
    pub last_offset: u64,
    /// The format.
    pub extension: Extension,
}

impl<'k> ParsedKey<'k> {
    /// Read a key, or just its last segment, written by [`SourcePartition::object_key`];
    /// anything else (a dead letter, a foreign file) is an error.
    pub fn parse(key: &'k str) -> Result<Self, KeyError> {
        let name = key.rsplit('/').next().unwrap_or(key);
        let not_ours = |problem| KeyError::NotAnObjectName {
            name: name.to_owned(),
            problem,
        };
        let mut fields = name.splitn(4, '+');
        let (Some(source), Some(partition), Some(first), Some(rest)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(not_ours("it has fewer than four fields separated by '+'"));
        };
        if !is_name(source) {
            return Err(not_ours("the source is not a topic or stream name"));
        }
        if !is_name(partition) {
            return Err(not_ours(
                "the partition is not a partition number or shard id",
            ));
        }
        let first_offset = parse_offset(first).map_err(not_ours)?;
        let (last, dot_extension) = rest
            .split_at_checked(OFFSET_DIGITS)
            .ok_or_else(|| not_ours("the last offset is not 20 digits"))?;
        let last_offset = parse_offset(last).map_err(not_ours)?;
        let extension = dot_extension
            .strip_prefix('.')
            .and_then(|e| Extension::ALL.into_iter().find(|x| x.as_str() == e))
            .ok_or_else(|| not_ours("the extension is not json, json.gz, json.zst or parquet"))?;
        if first_offset > last_offset {
            return Err(not_ours("the first offset is after the last"));
        }
        Ok(Self {
            key,
            source,
            partition,
            first_offset,
            last_offset,
            extension,
        })
    }
}

/// An offset written with exactly [`OFFSET_DIGITS`] digits, or what is wrong with it.
fn parse_offset(digits: &str) -> Result<u64, &'static str> {
    if digits.len() != OFFSET_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an offset is not 20 digits");
    }
    digits
        .parse()
        .map_err(|_| "an offset is larger than any offset")
}

/// The newest data object of `partition` of `source` among `keys` (a listing of the
/// destination prefix): the one with the highest last offset — the worker resumes after it.
/// Among equals, the widest range and then the greatest key win, so the choice does not depend
/// on the order of the listing. Other sources and partitions, dead letters and foreign files
/// are skipped; the format does not matter, so a Sink that changed it resumes all the same.
pub fn newest_for_partition<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    source: &str,
    partition: &str,
) -> Option<ParsedKey<'k>> {
    keys.into_iter()
        .filter_map(|key| ParsedKey::parse(key).ok())
        .filter(|parsed| parsed.source == source && parsed.partition == partition)
        .max_by_key(|parsed| {
            (
                parsed.last_offset,
                std::cmp::Reverse(parsed.first_offset),
                parsed.key,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin3() -> SourcePartition {
        SourcePartition::new("pin", "3").unwrap()
    }

    fn key(prefix: &str, path: &str, offsets: RangeInclusive<u64>) -> String {
        pin3()
            .object_key(prefix, path, offsets, Extension::Json)
            .unwrap()
    }

    fn parsed(key: &str) -> ParsedKey<'_> {
        ParsedKey::parse(key).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn extensions_follow_format_and_compression() {
        let (json, parquet) = (DataFormat::JsonLines, DataFormat::Parquet);
        let cases = [
            (json, None, "json"),
            (json, Some(Compression::None), "json"),
            (json, Some(Compression::Gzip), "json.gz"),
            (json, Some(Compression::Zstd), "json.zst"),
            (parquet, None, "parquet"),
            (parquet, Some(Compression::Snappy), "parquet"),
            (parquet, Some(Compression::Gzip), "parquet"),
            (parquet, Some(Compression::Zstd), "parquet"),
            (parquet, Some(Compression::None), "parquet"),
        ];
        for (format, compression, expected) in cases {
            let extension = Extension::for_format(format, compression).unwrap();
            assert_eq!(extension.as_str(), expected);
            assert_eq!(extension.to_string(), expected);
        }
        assert_eq!(
            Extension::for_format(json, Some(Compression::Snappy)),
            Err(KeyError::SnappyJson)
        );
        assert_eq!(
            KeyError::SnappyJson.to_string(),
            "Snappy compresses Parquet pages only; JSON lines take Gzip, Zstd or None"
        );
    }

    #[test]
    fn object_keys_pad_offsets_to_twenty_digits() {
        let gzip = Extension::JsonGzip;
        assert_eq!(
            pin3().object_key("raw/pin", "dt=2024-02-29", 1200..=1299, gzip),
            Ok(
                "raw/pin/dt=2024-02-29/pin+3+00000000000000001200+00000000000000001299.json.gz"
                    .into()
            )
        );
        assert_eq!(
            key("", "", 0..=u64::MAX),
            "pin+3+00000000000000000000+18446744073709551615.json"
        );
        assert_eq!(
            key("", "", 7..=7),
            "pin+3+00000000000000000007+00000000000000000007.json"
        );
    }

    #[test]
    fn empty_prefixes_and_paths_make_no_double_slash() {
        let name = "pin+3+00000000000000000000+00000000000000000009.json";
        for (prefix, path, expected) in [
            ("", "", name.to_owned()),
            ("raw", "", format!("raw/{name}")),
            ("raw/", "", format!("raw/{name}")),
            ("/raw/pin/", "", format!("raw/pin/{name}")),
            ("/", "", name.to_owned()),
            (
                "",
                "dt=2024-02-29/hr=13",
                format!("dt=2024-02-29/hr=13/{name}"),
            ),
            ("raw/", "dt=2024-02-29", format!("raw/dt=2024-02-29/{name}")),
        ] {
            let key = key(prefix, path, 0..=9);
            assert_eq!(key, expected, "{prefix:?} {path:?}");
            assert!(!key.contains("//") && !key.starts_with('/'), "{key}");
        }
    }

    #[test]
    fn kinesis_shards_name_objects_too() {
        let shard = SourcePartition::new("pin-stream", "shardId-000000000001").unwrap();
        let key = shard
            .object_key("clean/pin", "dt=2024-02-29", 5..=9, Extension::Parquet)
            .unwrap();
        assert_eq!(
            key,
            "clean/pin/dt=2024-02-29/pin-stream+shardId-000000000001+00000000000000000005+00000000000000000009.parquet"
        );
        let parsed = parsed(&key);
        assert_eq!(
            (parsed.source, parsed.partition),
            ("pin-stream", "shardId-000000000001")
        );
    }

    #[test]
    fn names_that_could_be_ambiguous_are_refused() {
        for (source, partition, what) in [
            ("a+b", "0", "source"),
            ("a/b", "0", "source"),
            ("", "0", "source"),
            ("tópico", "0", "source"),
            ("pin", "", "partition"),
            ("pin", "1+2", "partition"),
            ("pin", "shard 1", "partition"),
        ] {
            assert_eq!(
                SourcePartition::new(source, partition),
                Err(KeyError::InvalidName {
                    what,
                    value: if what == "source" { source } else { partition }.into()
                }),
                "{source:?} {partition:?}"
            );
        }
        assert_eq!(
            SourcePartition::new("a+b", "0").unwrap_err().to_string(),
            "source \"a+b\" cannot be part of an object name: use only letters, digits, '.', '_' and '-', as Kafka topics and Kinesis streams and shards do"
        );
        // Everything Kafka allows in a topic name.
        assert!(SourcePartition::new("Pin.events_v2-raw", "0").is_ok());
    }

    #[test]
    fn a_range_must_not_be_empty() {
        let backwards = RangeInclusive::new(10, 9);
        let error = pin3()
            .object_key("", "", backwards, Extension::Json)
            .unwrap_err();
        assert_eq!(error, KeyError::EmptyRange { first: 10, last: 9 });
        assert_eq!(
            error.to_string(),
            "offsets 10..=9 are no range: the first is after the last"
        );
    }

    #[test]
    fn keys_longer_than_s3_allows_are_refused() {
        let prefix = "p".repeat(MAX_KEY_BYTES);
        let error = pin3()
            .object_key(&prefix, "", 0..=1, Extension::Json)
            .unwrap_err();
        assert_eq!(
            error,
            KeyError::TooLong {
                bytes: MAX_KEY_BYTES + 1 + 52
            }
        );
        assert_eq!(
            error.to_string(),
            "the object key would be 1077 bytes, more than S3's 1024; shorten the prefix"
        );
        assert!(matches!(
            pin3().dead_letter_key(&prefix, 1),
            Err(KeyError::TooLong { .. })
        ));
        // Exactly the limit is fine.
        let name = "pin+3+00000000000000000000+00000000000000000001.json";
        let prefix = "p".repeat(MAX_KEY_BYTES - 1 - name.len());
        assert_eq!(key(&prefix, "", 0..=1).len(), MAX_KEY_BYTES);
    }

    #[test]
    fn dead_letter_keys() {
        assert_eq!(
            pin3().dead_letter_key("raw/pin/_dead_letter/", 42),
            Ok("raw/pin/_dead_letter/pin+3+00000000000000000042.json".into())
        );
        assert_eq!(
            pin3().dead_letter_key("", 42),
            Ok("pin+3+00000000000000000042.json".into())
        );
    }

    #[test]
    fn keys_parse_back() {
        let partitions = [
            SourcePartition::new("pin", "0").unwrap(),
            SourcePartition::new("geo.v2", "11").unwrap(),
            SourcePartition::new("user-stream", "shardId-000000000042").unwrap(),
        ];
        let extensions = [
            Extension::Json,
            Extension::JsonGzip,
            Extension::JsonZstd,
            Extension::Parquet,
        ];
        let ranges = [0..=0, 5..=99, 1_000_000..=1_999_999, u64::MAX..=u64::MAX];
        for partition in &partitions {
            for extension in extensions {
                for range in ranges.clone() {
                    for (prefix, path) in [("", ""), ("raw", "dt=2024-02-29/c=a%2Bb")] {
                        let key = partition
                            .object_key(prefix, path, range.clone(), extension)
                            .unwrap();
                        let read = parsed(&key);
                        assert_eq!(read.key, key);
                        assert_eq!(read.source, partition.source);
                        assert_eq!(read.partition, partition.partition);
                        assert_eq!(read.first_offset..=read.last_offset, range);
                        assert_eq!(read.extension, extension);
                        // The file name alone reads the same.
                        let name = key.rsplit('/').next().unwrap();
                        assert_eq!(ParsedKey { key: name, ..read }, parsed(name));
                    }
                }
            }
        }
    }

    #[test]
    fn other_names_are_not_data_objects() {
        let first = "00000000000000000001";
        let last = "00000000000000000002";
        for (name, problem) in [
            ("", "fewer than four fields"),
            ("raw/pin/", "fewer than four fields"),
            ("_SUCCESS", "fewer than four fields"),
            ("part-00000.parquet", "fewer than four fields"),
            ("pin+3+00000000000000000042.json", "fewer than four fields"),
            (&format!("+3+{first}+{last}.json"), "the source"),
            (&format!("p%2Bn+3+{first}+{last}.json"), "the source"),
            (&format!("pin++{first}+{last}.json"), "the partition"),
            (&format!("pin+3+1+{last}.json"), "not 20 digits"),
            (&format!("pin+3+{first}+2.json"), "not 20 digits"),
            (&format!("pin+3+0{first}+{last}.json"), "not 20 digits"),
            (&format!("pin+3+{first}+0{last}.json"), "the extension"),
            (
                &format!("pin+3+0000000000000000000x+{last}.json"),
                "not 20 digits",
            ),
            (
                &format!("pin+3+-0000000000000000001+{last}.json"),
                "not 20 digits",
            ),
            (&format!("pin+3+{first}+{last}"), "the extension"),
            (&format!("pin+3+{first}+{last}."), "the extension"),
            (&format!("pin+3+{first}+{last}.csv"), "the extension"),
            (
                &format!("pin+3+{first}+{last}.json.gz.tmp"),
                "the extension",
            ),
            (&format!("pin+3+{first}+{last}+x.json"), "the extension"),
            (
                &format!("pin+3+{last}+{first}.json"),
                "the first offset is after the last",
            ),
            (
                "pin+3+99999999999999999999+99999999999999999999.json",
                "larger than any offset",
            ),
        ] {
            let KeyError::NotAnObjectName { problem: found, .. } =
                ParsedKey::parse(name).unwrap_err()
            else {
                panic!("{name}");
            };
            assert!(found.contains(problem), "{name}: {found}");
        }
        assert_eq!(
            ParsedKey::parse("raw/_SUCCESS").unwrap_err().to_string(),
            "\"_SUCCESS\" is not a data object name (source+partition+firstOffset+lastOffset.ext): it has fewer than four fields separated by '+'"
        );
    }

    #[test]
    fn names_of_one_partition_sort_by_offset() {
        let offsets = [
            0,
            9,
            10,
            99,
            100,
            999,
            1000,
            123_456_789,
            9_999_999_999,
            u64::MAX,
        ];
        let mut keys: Vec<String> = offsets
            .iter()
            .rev()
            .map(|&o| key("raw", "dt=x", o..=o))
            .collect();
        keys.sort();
        let sorted: Vec<u64> = keys.iter().map(|k| parsed(k).first_offset).collect();
        assert_eq!(sorted, offsets);
    }

    #[test]
    fn the_newest_object_has_the_highest_last_offset() {
        let listing = [
            key("raw", "dt=2024-02-28", 0..=99),
            key("raw", "dt=2024-02-29", 100..=199),
            // A late record's object lands in an earlier path, yet it is the newest.
            key("raw", "dt=2024-02-28", 200..=299),
            key("raw", "dt=2024-02-29", 200..=299).replace("pin+3+", "pin+30+"),
            key("raw", "dt=2024-02-29", 400..=499).replace("pin+3+", "pin+1+"),
            key("raw", "dt=2024-02-29", 400..=499).replace("pin+3+", "pin.v2+3+"),
            pin3().dead_letter_key("raw/_dead_letter", 900).unwrap(),
            "raw/_SUCCESS".to_owned(),
            "raw/notes.txt".to_owned(),
        ];
        let newest = newest_for_partition(listing.iter().map(String::as_str), "pin", "3").unwrap();
        assert_eq!(newest.key, listing[2]);
        assert_eq!((newest.first_offset, newest.last_offset), (200, 299));
        let other = newest_for_partition(listing.iter().map(String::as_str), "pin", "30").unwrap();
        assert_eq!(other.last_offset, 299);
        assert_eq!(
            newest_for_partition(listing.iter().map(String::as_str), "pin", "2"),
            None
        );
        assert_eq!(
            newest_for_partition(listing.iter().map(String::as_str), "geo", "3"),
            None
        );
        assert_eq!(newest_for_partition([], "pin", "3"), None);
    }

    #[test]
    fn the_newest_object_does_not_depend_on_the_listing_order() {
        // One flush of 100..=199 wrote two paths; a stray narrower range ends at the same offset.
        let listing = [
            key("raw", "country=Chile", 100..=199),
            key("raw", "country=Fiji", 100..=199),
            key("raw", "country=Fiji", 150..=199),
            key("raw", "country=Chile", 0..=99),
        ];
        let forward = newest_for_partition(listing.iter().map(String::as_str), "pin", "3");
        let backward = newest_for_partition(listing.iter().rev().map(String::as_str), "pin", "3");
        assert_eq!(forward, backward);
        assert_eq!(forward.map(|p| p.key), Some(listing[1].as_str()));
    }

    #[test]
    fn a_changed_format_still_resumes() {
        let json = key("raw", "", 0..=99);
        let parquet = pin3()
            .object_key("raw", "", 100..=149, Extension::Parquet)
            .unwrap();
        let newest = newest_for_partition([json.as_str(), parquet.as_str()], "pin", "3").unwrap();
        assert_eq!(
            (newest.last_offset, newest.extension),
            (149, Extension::Parquet)
        );
    }
}
