//! The deterministic generator of Pinterest posts: one seed, one stream of records.

use std::fmt::Write as _;

use jiff::SignedDuration;
use jiff::civil::{DateTime, date};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::vocabulary::{
    CATEGORIES, COUNTRIES, DESCRIPTIONS, FIRST_NAMES, LAST_NAMES, MEDIA, POSTER_FIRST,
    POSTER_SECOND, TITLES, TOPICS,
};

/// What the generator makes: the seed of its random stream and how often records are spoiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// The same seed gives the same records, byte for byte, on every platform.
    pub seed: u64,
    /// The probability that a record has one field replaced by a dirty value.
    pub dirty_rate: f64,
    /// The probability that a record is sent twice in a row (independently per table).
    pub duplicate_rate: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            dirty_rate: 0.05,
            duplicate_rate: 0.01,
        }
    }
}

impl GeneratorConfig {
    /// Both rates must be probabilities.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let is_probability = |rate: f64| (0.0..=1.0).contains(&rate);
        if !is_probability(self.dirty_rate) {
            return Err(ConfigError::DirtyRate(self.dirty_rate));
        }
        if !is_probability(self.duplicate_rate) {
            return Err(ConfigError::DuplicateRate(self.duplicate_rate));
        }
        Ok(())
    }
}

/// A [`GeneratorConfig`] that cannot be used.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("the dirty rate must be between 0 and 1, not {0}")]
    DirtyRate(f64),
    #[error("the duplicate rate must be between 0 and 1, not {0}")]
    DuplicateRate(f64),
}

/// The three tables of the workload, in the order the generator draws a post's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Pin,
    Geo,
    User,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::Pin, Table::Geo, Table::User];

    /// The topic, stream and directory name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Pin => "pin",
            Table::Geo => "geo",
            Table::User => "user",
        }
    }
}

/// One post: its pin, geo and user records as JSON text (one object each, no newline). A
/// duplicated record appears twice, byte-identical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    /// The `index` of the pin and the `ind` of the geo and user records.
    pub ind: u64,
    pub pin: Vec<String>,
    pub geo: Vec<String>,
    pub user: Vec<String>,
}

/// A follower count as the records write it: below 1000 the digits; then whole thousands with
/// `k` (5300 → `"5k"`), whole millions with `M` (2700000 → `"2M"`).
pub fn format_follower_count(count: u64) -> String {
    match count {
        0..1_000 => count.to_string(),
        1_000..1_000_000 => format!("{}k", count / 1_000),
        _ => format!("{}M", count / 1_000_000),
    }
}

/// The fields a dirty pin value may replace.
#[derive(Clone, Copy)]
enum PinField {
    Title,
    Description,
    PosterName,
    FollowerCount,
    TagList,
    ImageSrc,
    Category,
}

/// Every dirty pin value, equally likely once a pin is spoiled.
const PIN_DIRTY: [(PinField, &str); 13] = [
    (
        PinField::Description,
        "No description available Story format",
    ),
    (PinField::Description, "No description available"),
    (PinField::Title, "No Title Data Available"),
    (PinField::PosterName, "User Info Error"),
    (PinField::FollowerCount, "User Info Error"),
    (PinField::ImageSrc, "Image src error."),
    (PinField::TagList, "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"),
    (PinField::Title, ""),
    (PinField::Description, ""),
    (PinField::PosterName, ""),
    (PinField::FollowerCount, ""),
    (PinField::TagList, ""),
    (PinField::Category, ""),
];

/// Which user field a spoiled user record loses.
#[derive(Clone, Copy)]
enum UserField {
    FirstName,
    LastName,
}
const USER_DIRTY: [UserField; 2] = [UserField::FirstName, UserField::LastName];

/// Posts' geo timestamps lie in [2015-01-01, 2023-01-01); users joined in [2015-01-01, 2022-01-01).
const FIRST_DAY: (i16, i8, i8) = (2015, 1, 1);
const GEO_END: (i16, i8, i8) = (2023, 1, 1);
const JOINED_END: (i16, i8, i8) = (2022, 1, 1);

/// Follower counts are log-spread over [0, 10^7).
const FOLLOWER_DECADES: f64 = 7.0;
/// The share of users younger than 18 (outside every age group of the aggregations).
const MINOR_SHARE: f64 = 0.03;

/// Random choices from a list with relative weights.
struct Weighted {
    cumulative: Vec<u32>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = u32>) -> Self {
        let cumulative = weights
            .into_iter()
            .scan(0, |total, weight| {
                *total += weight;
                Some(*total)
            })
            .collect();
        Self { cumulative }
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = *self.cumulative.last().expect("a non-empty list");
        let point = rng.random_range(0..total);
        self.cumulative.partition_point(|&end| end <= point)
    }
}

/// A poster of the pool; the same poster always shows the same follower count.
struct Poster {
    name: String,
    follower_count: String,
}

/// One rendered post: each table's JSON text and how many times it is sent.
#[derive(Default)]
pub(super) struct Rendered {
    json: [Vec<u8>; 3],
    copies: [u8; 3],
}

impl Rendered {
    /// The record of `table` and how many times it is sent in a row (1, or 2 for a duplicate).
    pub(super) fn record(&self, table: Table) -> (&[u8], u8) {
        let at = table as usize;
        (&self.json[at], self.copies[at])
    }
}

/// Text buffers reused from post to post.
#[derive(Default)]
struct Scratch {
    title: String,
    description: String,
    tag_list: String,
    image_src: String,
    save_location: String,
    timestamp: String,
}

#[derive(Serialize)]
struct PinRecord<'a> {
    index: u64,
    unique_id: &'a str,
    title: &'a str,
    description: &'a str,
    poster_name: &'a str,
    follower_count: &'a str,
    tag_list: &'a str,
    is_image_or_video: &'a str,
    image_src: &'a str,
    downloaded: u8,
    save_location: &'a str,
    category: &'a str,
}

#[derive(Serialize)]
struct GeoRecord<'a> {
    ind: u64,
    timestamp: &'a str,
    latitude: f64,
    longitude: f64,
    country: &'a str,
}

#[derive(Serialize)]
struct UserRecord<'a> {
    ind: u64,
    first_name: &'a str,
    last_name: &'a str,
    age: u8,
    date_joined: &'a str,
}

/// The stream of posts of one [`GeneratorConfig`], from `ind` 0 on.
pub struct Generator {
    config: GeneratorConfig,
    rng: ChaCha8Rng,
    next_ind: u64,
    categories: Weighted,
    countries: Weighted,
    media: Weighted,
    posters: Vec<Poster>,
    first_day: DateTime,
    geo_seconds: i64,
    joined_seconds: i64,
    scratch: Scratch,
    rendered: Rendered,
}

impl Generator {
    /// The generator of `config`, at post 0; fails when a rate is not a probability.
    pub fn new(config: GeneratorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let posters = POSTER_SECOND
            .iter()
            .flat_map(|second| POSTER_FIRST.iter().map(move |first| (first, second)))
            .map(|(first, second)| Poster {
                name: format!("{first} {second}"),
                follower_count: format_follower_count(follower_count(&mut rng)),
            })
            .collect();
        let day = |(year, month, day): (i16, i8, i8)| date(year, month, day).at(0, 0, 0, 0);
        let first_day = day(FIRST_DAY);
        Ok(Self {
            config,
            rng,
            next_ind: 0,
            categories: Weighted::new(CATEGORIES.iter().map(|(_, weight)| *weight)),
            countries: Weighted::new(COUNTRIES.iter().map(|(_, weight)| *weight)),
            media: Weighted::new(MEDIA.iter().map(|(_, weight)| *weight)),
            posters,
            first_day,
            geo_seconds: day(GEO_END).duration_since(first_day).as_secs(),
            joined_seconds: day(JOINED_END).duration_since(first_day).as_secs(),
            scratch: Scratch::default(),
            rendered: Rendered::default(),
        })
    }

    /// The next post's records.
    pub fn next_post(&mut self) -> Post {
        let ind = self.next_ind;
        let rendered = self.render_next();
        let lines = |table| {
            let (json, copies) = rendered.record(table);
            let text = String::from_utf8(json.to_vec()).expect("serde_json writes UTF-8");
            vec![text; usize::from(copies)]
        };
        Post {
            ind,
            pin: lines(Table::Pin),
            geo: lines(Table::Geo),
            user: lines(Table::User),
        }
    }

    /// Render the next post into buffers reused from post to post. Every post draws the same
    /// number of random values whatever the rates, so two configurations that differ only in
    /// their rates make the same posts apart from the spoiled and repeated records.
    pub(super) fn render_next(&mut self) -> &Rendered {
        let ind = self.next_ind;
        self.next_ind += 1;
        self.render_pin(ind);
        self.render_geo(ind);
        self.render_user(ind);
        &self.rendered
    }

    fn render_pin(&mut self, ind: u64) {
        let Self { rng, scratch, .. } = self;
        let category_at = self.categories.pick(rng);
        let category = CATEGORIES[category_at].0;
        let topics = &TOPICS[category_at];
        let poster = &self.posters[popular_index(rng, self.posters.len())];

        let mut uuid_bytes = [0; 16];
        rng.fill_bytes(&mut uuid_bytes);
        let mut uuid_text = uuid::Uuid::encode_buffer();
        let unique_id = uuid::Builder::from_random_bytes(uuid_bytes)
            .into_uuid()
            .hyphenated()
            .encode_lower(&mut uuid_text);

        let topic = topics[pick(rng, topics.len())];
        let (before, after) = TITLES[pick(rng, TITLES.len())];
        scratch.title.clear();
        scratch.title.extend([before, topic, after]);

        let topic = topics[pick(rng, topics.len())];
        let (before, after) = DESCRIPTIONS[pick(rng, DESCRIPTIONS.len())];
        scratch.description.clear();
        scratch.description.push_str(before);
        scratch
            .description
            .extend(topic.chars().flat_map(char::to_lowercase));
        scratch.description.push_str(after);

        // 3 to 6 distinct topics: the first draws of a shuffle of the category's topics.
        let mut order: [usize; 8] = std::array::from_fn(|at| at);
        let tags = 3 + pick(rng, 4);
        scratch.tag_list.clear();
        for at in 0..tags {
            let swap_with = at + pick(rng, order.len() - at);
            order.swap(at, swap_with);
            if at > 0 {
                scratch.tag_list.push(',');
            }
            scratch.tag_list.push_str(topics[order[at]]);
        }

        let media = MEDIA[self.media.pick(rng)].0;
        let mut image = [0; 16];
        rng.fill_bytes(&mut image);
        let extension = if rng.random::<f64>() < 0.85 {
            "jpg"
        } else {
            "png"
        };
        // Like Pinterest's own: originals/ab/cd/ef/abcdef<26 more hex digits>.jpg
        scratch.image_src.clear();
        write!(
            scratch.image_src,
            "https://i.pinimg.com/originals/{:02x}/{:02x}/{:02x}/{:032x}.{extension}",
            image[0],
            image[1],
            image[2],
            u128::from_be_bytes(image),
        )
        .expect("writing to a String");
        let downloaded = u8::from(rng.random::<f64>() < 0.9);
        scratch.save_location.clear();
        scratch.save_location.push_str("Local save in /data/");
        scratch.save_location.push_str(category);

        let mut record = PinRecord {
            index: ind,
            unique_id,
            title: &scratch.title,
            description: &scratch.description,
            poster_name: &poster.name,
            follower_count: &poster.follower_count,
            tag_list: &scratch.tag_list,
            is_image_or_video: media,
            image_src: &scratch.image_src,
            downloaded,
            save_location: &scratch.save_location,
            category,
        };
        if let Some((field, value)) = spoil(rng, self.config.dirty_rate, &PIN_DIRTY) {
            let slot = match field {
                PinField::Title => &mut record.title,
                PinField::Description => &mut record.description,
                PinField::PosterName => &mut record.poster_name,
                PinField::FollowerCount => &mut record.follower_count,
                PinField::TagList => &mut record.tag_list,
                PinField::ImageSrc => &mut record.image_src,
                PinField::Category => &mut record.category,
            };
            *slot = value;
        }
        let copies = copies(rng, self.config.duplicate_rate);
        store(&mut self.rendered, Table::Pin, &record, copies);
    }

    fn render_geo(&mut self, ind: u64) {
        let Self { rng, scratch, .. } = self;
        write_time(
            &mut scratch.timestamp,
            self.first_day,
            rng.random_range(0..self.geo_seconds),
        );
        let latitude = f64::from(rng.random_range(-9_000_000..=9_000_000)) / 100_000.0;
        let longitude = f64::from(rng.random_range(-18_000_000..=18_000_000)) / 100_000.0;
        let mut record = GeoRecord {
            ind,
            timestamp: &scratch.timestamp,
            latitude,
            longitude,
            country: COUNTRIES[self.countries.pick(rng)].0,
        };
        if spoil(rng, self.config.dirty_rate, &[()]).is_some() {
            record.country = "";
        }
        let copies = copies(rng, self.config.duplicate_rate);
        store(&mut self.rendered, Table::Geo, &record, copies);
    }

    fn render_user(&mut self, ind: u64) {
        let Self { rng, scratch, .. } = self;
        let first_name = FIRST_NAMES[pick(rng, FIRST_NAMES.len())];
        let last_name = LAST_NAMES[pick(rng, LAST_NAMES.len())];
        let is_minor = rng.random::<f64>() < MINOR_SHARE;
        // Skewed young: most users are in their twenties and thirties, a few reach 75.
        let adult_age = 18 + (58.0 * rng.random::<f64>().powf(1.7)) as u8;
        let minor_age = rng.random_range(13..=17);
        write_time(
            &mut scratch.timestamp,
            self.first_day,
            rng.random_range(0..self.joined_seconds),
        );
        let mut record = UserRecord {
            ind,
            first_name,
            last_name,
            age: if is_minor { minor_age } else { adult_age },
            date_joined: &scratch.timestamp,
        };
        match spoil(rng, self.config.dirty_rate, &USER_DIRTY) {
            Some(UserField::FirstName) => record.first_name = "",
            Some(UserField::LastName) => record.last_name = "",
            None => {}
        }
        let copies = copies(rng, self.config.duplicate_rate);
        store(&mut self.rendered, Table::User, &record, copies);
    }
}

/// A uniform index below `len` (a few dozen at most).
fn pick(rng: &mut ChaCha8Rng, len: usize) -> usize {
    let len = u32::try_from(len).expect("a short list");
    rng.random_range(0..len) as usize
}

/// An index below `len`, low indices far more often: a few posters post most pins.
fn popular_index(rng: &mut ChaCha8Rng, len: usize) -> usize {
    let at = (len as f64 * rng.random::<f64>().powi(2)) as usize;
    at.min(len - 1)
}

/// A follower count, log-spread over [0, 10^7): as many between 10 and 100 as between 10^6
/// and 10^7.
fn follower_count(rng: &mut ChaCha8Rng) -> u64 {
    (10_f64.powf(FOLLOWER_DECADES * rng.random::<f64>()) - 1.0) as u64
}

/// With probability `rate`, one of `choices`; the two draws are made either way.
fn spoil<T: Copy>(rng: &mut ChaCha8Rng, rate: f64, choices: &[T]) -> Option<T> {
    let spoiled = rng.random::<f64>() < rate;
    let choice = choices[pick(rng, choices.len())];
    spoiled.then_some(choice)
}

/// 2 with probability `rate`, else 1.
fn copies(rng: &mut ChaCha8Rng, rate: f64) -> u8 {
    if rng.random::<f64>() < rate { 2 } else { 1 }
}

/// `first_day` plus `seconds`, as `YYYY-MM-DD HH:MM:SS`.
fn write_time(out: &mut String, first_day: DateTime, seconds: i64) {
    let time = first_day
        .checked_add(SignedDuration::from_secs(seconds))
        .expect("a time within the generator's years");
    out.clear();
    write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
    .expect("writing to a String");
}

fn store(rendered: &mut Rendered, table: Table, record: &impl Serialize, copies: u8) {
    let at = table as usize;
    rendered.json[at].clear();
    serde_json::to_writer(&mut rendered.json[at], record)
        .expect("a record of strings and numbers serializes");
    rendered.copies[at] = copies;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_generator(seed: u64, dirty_rate: f64, duplicate_rate: f64) -> Generator {
        Generator::new(GeneratorConfig {
            seed,
            dirty_rate,
            duplicate_rate,
        })
        .unwrap()
    }

    fn parse(line: &str) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_str(line).unwrap() {
            serde_json::Value::Object(fields) => fields,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn follower_counts_are_written_as_the_records_do() {
        assert_eq!(format_follower_count(0), "0");
        assert_eq!(format_follower_count(999), "999");
        assert_eq!(format_follower_count(1_000), "1k");
        assert_eq!(format_follower_count(1_500), "1k");
        assert_eq!(format_follower_count(5_300), "5k");
        assert_eq!(format_follower_count(999_999), "999k");
        assert_eq!(format_follower_count(1_000_000), "1M");
        assert_eq!(format_follower_count(9_999_999), "9M");
    }

    #[test]
    fn rates_must_be_probabilities() {
        let config = |dirty_rate, duplicate_rate| GeneratorConfig {
            seed: 1,
            dirty_rate,
            duplicate_rate,
        };
        assert_eq!(config(0.0, 1.0).validate(), Ok(()));
        assert_eq!(
            config(1.5, 0.0).validate(),
            Err(ConfigError::DirtyRate(1.5))
        );
        assert_eq!(
            config(0.0, -0.1).validate(),
            Err(ConfigError::DuplicateRate(-0.1))
        );
        assert!(config(f64::NAN, 0.0).validate().is_err());
        assert!(Generator::new(config(0.0, 2.0)).is_err());
    }

    #[test]
    fn records_have_the_fields_of_the_reference_data_in_order() {
        let post = new_generator(3, 0.0, 0.0).next_post();
        assert_eq!(post.ind, 0);
        let pin = parse(&post.pin[0]);
        assert_eq!(pin.len(), 12);
        // serde_json's Map sorts its keys, so the order on the wire is checked on the text.
        let order = |line: &str, fields: &[&str]| {
            let at: Vec<usize> = fields
                .iter()
                .map(|field| line.find(&format!("\"{field}\":")).unwrap())
                .collect();
            assert!(at.is_sorted(), "{line}");
        };
        order(
            &post.pin[0],
            &[
                "index",
                "unique_id",
                "title",
                "description",
                "poster_name",
                "follower_count",
                "tag_list",
                "is_image_or_video",
                "image_src",
                "downloaded",
                "save_location",
                "category",
            ],
        );
        order(
            &post.geo[0],
            &["ind", "timestamp", "latitude", "longitude", "country"],
        );
        order(
            &post.user[0],
            &["ind", "first_name", "last_name", "age", "date_joined"],
        );
        assert_eq!(pin["index"], 0);
        let unique_id = uuid::Uuid::parse_str(pin["unique_id"].as_str().unwrap()).unwrap();
        assert_eq!(unique_id.get_version_num(), 4);
        let category = pin["category"].as_str().unwrap();
        assert!(CATEGORIES.iter().any(|(name, _)| *name == category));
        assert_eq!(
            pin["save_location"],
            format!("Local save in /data/{category}")
        );
        assert!(
            pin["image_src"]
                .as_str()
                .unwrap()
                .starts_with("https://i.pinimg.com/originals/")
        );
    }

    #[test]
    fn values_stay_in_their_ranges() {
        let mut generator = new_generator(5, 0.0, 0.0);
        let (mut minors, mut videos) = (0, 0);
        for _ in 0..2_000 {
            let post = generator.next_post();
            let pin = parse(&post.pin[0]);
            let geo = parse(&post.geo[0]);
            let user = parse(&post.user[0]);
            let latitude = geo["latitude"].as_f64().unwrap();
            let longitude = geo["longitude"].as_f64().unwrap();
            assert!((-90.0..=90.0).contains(&latitude));
            assert!((-180.0..=180.0).contains(&longitude));
            let timestamp = geo["timestamp"].as_str().unwrap();
            assert!(("2015-01-01 00:00:00"..="2022-12-31 23:59:59").contains(&timestamp));
            let joined = user["date_joined"].as_str().unwrap();
            assert!(("2015-01-01 00:00:00"..="2021-12-31 23:59:59").contains(&joined));
            assert!(DateTime::strptime("%Y-%m-%d %H:%M:%S", joined).is_ok());
            let age = user["age"].as_u64().unwrap();
            assert!((13..=75).contains(&age), "{age}");
            minors += usize::from(age < 18);
            videos += usize::from(pin["is_image_or_video"] != "image");
            assert!(matches!(pin["downloaded"].as_u64(), Some(0 | 1)));
            let followers = pin["follower_count"].as_str().unwrap();
            assert!(crate::batch::udf::parse_count(followers).unwrap() < 10_000_000);
        }
        assert!((20..120).contains(&minors), "{minors}");
        assert!((200..600).contains(&videos), "{videos}");
    }

    #[test]
    fn the_same_seed_makes_the_same_posts() {
        let posts = |seed| {
            let mut generator = new_generator(seed, 0.2, 0.1);
            (0..500).map(|_| generator.next_post()).collect::<Vec<_>>()
        };
        assert_eq!(posts(11), posts(11));
        assert_ne!(posts(11), posts(12));
    }

    #[test]
    fn rates_change_only_the_spoiled_and_repeated_records() {
        let mut clean = new_generator(4, 0.0, 0.0);
        let mut dirty = new_generator(4, 0.3, 0.3);
        let mut differing = 0;
        for _ in 0..300 {
            let (clean, dirty) = (clean.next_post(), dirty.next_post());
            assert_eq!(
                parse(&clean.geo[0])["timestamp"],
                parse(&dirty.geo[0])["timestamp"]
            );
            let (clean, dirty) = (parse(&clean.pin[0]), parse(&dirty.pin[0]));
            let changed = clean
                .iter()
                .filter(|(k, v)| dirty[k.as_str()] != **v)
                .count();
            assert!(changed <= 1);
            differing += changed;
        }
        assert!(differing > 50);
    }

    #[test]
    fn every_dirty_value_appears() {
        let mut generator = new_generator(2, 0.3, 0.0);
        let mut seen = std::collections::HashSet::new();
        let mut dirty_pins = 0;
        for _ in 0..2_000 {
            let post = generator.next_post();
            let pin = parse(&post.pin[0]);
            let mut spoiled = 0;
            for (field, value) in PIN_DIRTY.map(|(field, value)| (pin_field_name(field), value)) {
                if pin[field] == value {
                    seen.insert((field, value));
                    spoiled += 1;
                }
            }
            assert!(spoiled <= 1, "{}", post.pin[0]);
            dirty_pins += spoiled;
            let geo = parse(&post.geo[0]);
            if geo["country"] == "" {
                seen.insert(("country", ""));
            }
            let user = parse(&post.user[0]);
            for field in ["first_name", "last_name"] {
                if user[field] == "" {
                    seen.insert((field, ""));
                }
            }
            assert!(user["first_name"] != "" || user["last_name"] != "");
        }
        assert_eq!(seen.len(), PIN_DIRTY.len() + 3, "{seen:?}");
        assert!((450..750).contains(&dirty_pins), "{dirty_pins}");
    }

    fn pin_field_name(field: PinField) -> &'static str {
        match field {
            PinField::Title => "title",
            PinField::Description => "description",
            PinField::PosterName => "poster_name",
            PinField::FollowerCount => "follower_count",
            PinField::TagList => "tag_list",
            PinField::ImageSrc => "image_src",
            PinField::Category => "category",
        }
    }

    #[test]
    fn clean_records_have_no_dirty_values() {
        let mut generator = new_generator(6, 0.0, 0.0);
        for _ in 0..1_000 {
            let post = generator.next_post();
            let pin = parse(&post.pin[0]);
            for (field, value) in PIN_DIRTY.map(|(field, value)| (pin_field_name(field), value)) {
                assert_ne!(pin[field], value, "{}", post.pin[0]);
            }
            assert_ne!(parse(&post.geo[0])["country"], "");
        }
    }

    #[test]
    fn duplicates_repeat_the_record_byte_for_byte() {
        let mut generator = new_generator(8, 0.1, 0.2);
        let mut duplicates = [0; 3];
        for _ in 0..1_000 {
            let post = generator.next_post();
            for (at, lines) in [&post.pin, &post.geo, &post.user].into_iter().enumerate() {
                assert!(matches!(lines.len(), 1 | 2));
                if lines.len() == 2 {
                    assert_eq!(lines[0], lines[1]);
                    duplicates[at] += 1;
                }
            }
        }
        for count in duplicates {
            assert!((120..280).contains(&count), "{duplicates:?}");
        }
        let mut without = new_generator(8, 0.1, 0.0);
        assert!((0..1_000).all(|_| without.next_post().pin.len() == 1));
    }
}
