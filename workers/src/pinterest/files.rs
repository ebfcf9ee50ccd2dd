//! Writing generated posts to JSON-lines files, one directory per table.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::generator::{ConfigError, Generator, GeneratorConfig, Table};

/// The default number of posts per file.
pub const RECORDS_PER_FILE: u64 = 100_000;

/// What [`write_dir`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub posts: u64,
    /// Records of each table, duplicates included, in the order of [`Table::ALL`].
    pub records: [u64; 3],
    /// Files of each table.
    pub files_per_table: u64,
}

impl Written {
    pub fn records(&self, table: Table) -> u64 {
        self.records[table as usize]
    }
}

/// Why [`write_dir`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the number of posts must be at least 1")]
    NoPosts,
    #[error("the number of records per file must be at least 1")]
    NoRecordsPerFile,
    #[error("writing {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Write `count` posts of `config` as `dir/{pin,geo,user}/part-NNNNN.json`, JSON lines, moving
/// to the next part every `records_per_file` posts (a post's duplicate stays in its part).
/// Parts of an earlier run in those directories are removed first, so the directory holds
/// exactly this run.
pub fn write_dir(
    dir: &Path,
    count: u64,
    config: GeneratorConfig,
    records_per_file: u64,
) -> Result<Written, WriteError> {
    let mut generator = Generator::new(config)?;
    if count == 0 {
        return Err(WriteError::NoPosts);
    }
    if records_per_file == 0 {
        return Err(WriteError::NoRecordsPerFile);
    }
    let table_dirs = Table::ALL.map(|table| dir.join(table.name()));
    for table_dir in &table_dirs {
        remove_parts(table_dir)?;
    }
    let mut written = Written::default();
    let mut parts: Option<[Part; 3]> = None;
    for ind in 0..count {
        if ind % records_per_file == 0 {
            if let Some(parts) = parts.take() {
                parts.into_iter().try_for_each(Part::finish)?;
            }
            let name = format!("part-{:05}.json", ind / records_per_file);
            let [pin, geo, user] = table_dirs
                .each_ref()
                .map(|table_dir| Part::create(table_dir.join(&name)));
            parts = Some([pin?, geo?, user?]);
            written.files_per_table += 1;
        }
        let parts = parts.as_mut().expect("opened at the first post");
        let rendered = generator.render_next();
        for (part, table) in parts.iter_mut().zip(Table::ALL) {
            let (json, copies) = rendered.record(table);
            for _ in 0..copies {
                part.write_line(json)?;
            }
            written.records[table as usize] += u64::from(copies);
        }
        written.posts += 1;
    }
    if let Some(parts) = parts {
        parts.into_iter().try_for_each(Part::finish)?;
    }
    Ok(written)
}

/// Create `dir` if needed and remove its `part-<digits>.json` files.
fn remove_parts(dir: &Path) -> Result<(), WriteError> {
    let io_error = |source| WriteError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_error)?;
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let is_part = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("part-")?.strip_suffix(".json"))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        if is_part {
            std::fs::remove_file(&path).map_err(|source| WriteError::Io { path, source })?;
        }
    }
    Ok(())
}

/// One file being written.
struct Part {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Part {
    fn create(path: PathBuf) -> Result<Self, WriteError> {
        match File::create(&path) {
            Ok(file) => Ok(Self {
                out: BufWriter::with_capacity(1 << 20, file),
                path,
            }),
            Err(source) => Err(WriteError::Io { path, source }),
        }
    }

    fn write_line(&mut self, json: &[u8]) -> Result<(), WriteError> {
        self.out
            .write_all(json)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|source| self.error(source))
    }

    fn finish(mut self) -> Result<(), WriteError> {
        self.out.flush().map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> WriteError {
        WriteError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64, duplicate_rate: f64) -> GeneratorConfig {
        GeneratorConfig {
            seed,
            dirty_rate: 0.1,
            duplicate_rate,
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn parts_hold_records_per_file_posts_each() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_dir(dir.path(), 250, config(1, 0.0), 100).unwrap();
        assert_eq!(written.posts, 250);
        assert_eq!(written.files_per_table, 3);
        for table in Table::ALL {
            assert_eq!(written.records(table), 250);
            let lines: Vec<usize> = ["part-00000.json", "part-00001.json", "part-00002.json"]
                .iter()
                .map(|name| {
                    read(&dir.path().join(table.name()).join(name))
                        .lines()
                        .count()
                })
                .collect();
            assert_eq!(lines, [100, 100, 50]);
        }
        let first = read(&dir.path().join("pin/part-00001.json"));
        assert!(first.starts_with("{\"index\":100,"));
    }

    #[test]
    fn files_are_json_lines_and_match_the_generator() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_dir(dir.path(), 300, config(9, 0.1), 1_000).unwrap();
        let mut generator = Generator::new(config(9, 0.1)).unwrap();
        let mut expected = [String::new(), String::new(), String::new()];
        for _ in 0..300 {
            let post = generator.next_post();
            for (text, lines) in expected.iter_mut().zip([post.pin, post.geo, post.user]) {
                for line in lines {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        }
        for (table, expected) in Table::ALL.into_iter().zip(expected) {
            let text = read(&dir.path().join(table.name()).join("part-00000.json"));
            assert_eq!(text, expected);
            assert_eq!(text.lines().count() as u64, written.records(table));
            assert!(written.records(table) > 300);
            assert!(text.ends_with('\n'));
            for line in text.lines() {
                assert_eq!(line.trim(), line);
                assert!(
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap()
                        .is_object()
                );
            }
        }
    }

    #[test]
    fn the_same_seed_writes_the_same_bytes() {
        let files = |seed| {
            let dir = tempfile::tempdir().unwrap();
            write_dir(dir.path(), 200, config(seed, 0.05), 1_000).unwrap();
            Table::ALL.map(|table| read(&dir.path().join(table.name()).join("part-00000.json")))
        };
        assert_eq!(files(7), files(7));
        assert_ne!(files(7), files(8));
    }

    #[test]
    fn a_second_run_replaces_the_parts_of_the_first() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), 30, config(1, 0.0), 10).unwrap();
        std::fs::write(dir.path().join("pin/notes.txt"), "kept").unwrap();
        write_dir(dir.path(), 15, config(1, 0.0), 10).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("pin"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["notes.txt", "part-00000.json", "part-00001.json"]);
    }

    #[test]
    fn counts_and_rates_are_checked_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        assert!(matches!(
            write_dir(&out, 0, config(1, 0.0), 10),
            Err(WriteError::NoPosts)
        ));
        assert!(matches!(
            write_dir(&out, 10, config(1, 0.0), 0),
            Err(WriteError::NoRecordsPerFile)
        ));
        assert!(matches!(
            write_dir(&out, 10, config(1, 1.5), 10),
            Err(WriteError::Config(ConfigError::DuplicateRate(_)))
        ));
        assert!(!out.exists());
    }
}
