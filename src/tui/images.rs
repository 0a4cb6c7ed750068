//! Pictures in the terminal: which graphics protocol to use (asked of the terminal once, with a
//! bounded wait), and the cache of pictures and of their encodings. A picture is encoded once for the
//! cell size it is drawn at, so paging back and forth over SSH sends nothing twice.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use image::RgbImage;
use ratatui::layout::Size;
use ratatui_image::picker::cap_parser::QueryStdioOptions;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;

use super::gallery::PictureSpec;

/// Environment variable that overrides the graphics guess, like the `--graphics` option.
pub const GRAPHICS_ENV: &str = "CRACKSCOPE_GRAPHICS";

/// How long the terminal may take to answer the capability query before half blocks are used.
const QUERY_TIMEOUT: Duration = Duration::from_millis(1000);

/// The user's choice of graphics protocol (`--graphics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphicsChoice {
    /// Ask the terminal what it supports.
    #[default]
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    /// Unicode half blocks with colours: works everywhere, including over plain SSH.
    Halfblocks,
}

impl FromStr for GraphicsChoice {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" => GraphicsChoice::Auto,
            "kitty" => GraphicsChoice::Kitty,
            "sixel" => GraphicsChoice::Sixel,
            "iterm2" => GraphicsChoice::Iterm2,
            "halfblocks" => GraphicsChoice::Halfblocks,
            other => bail!("unknown graphics protocol {other:?} (expected auto, kitty, sixel, iterm2 or halfblocks)"),
        })
    }
}

impl fmt::Display for GraphicsChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GraphicsChoice::Auto => "auto",
            GraphicsChoice::Kitty => "kitty",
            GraphicsChoice::Sixel => "sixel",
            GraphicsChoice::Iterm2 => "iterm2",
            GraphicsChoice::Halfblocks => "halfblocks",
        })
    }
}

impl GraphicsChoice {
    /// The command-line value if given, else `CRACKSCOPE_GRAPHICS` if set, else `Auto`.
    pub fn resolve(option: Option<GraphicsChoice>) -> Result<GraphicsChoice> {
        if let Some(choice) = option {
            return Ok(choice);
        }
        match std::env::var(GRAPHICS_ENV) {
            Ok(value) if !value.trim().is_empty() => value.parse().map_err(|e: anyhow::Error| {
                e.context(format!("environment variable {GRAPHICS_ENV}"))
            }),
            _ => Ok(GraphicsChoice::Auto),
        }
    }

    fn forced_protocol(self) -> Option<ProtocolType> {
        match self {
            GraphicsChoice::Auto => None,
            GraphicsChoice::Kitty => Some(ProtocolType::Kitty),
            GraphicsChoice::Sixel => Some(ProtocolType::Sixel),
            GraphicsChoice::Iterm2 => Some(ProtocolType::Iterm2),
            GraphicsChoice::Halfblocks => Some(ProtocolType::Halfblocks),
        }
    }
}

/// Decides how pictures are drawn. Must run after raw mode is on and before anything reads terminal
/// input: the query writes escape codes and reads the answers from stdin. The wait is bounded; a
/// terminal that does not answer in time gets half blocks (or the forced protocol with a nominal
/// cell size). ratatui-image sets tmux passthrough up itself when it detects tmux.
pub fn pick(choice: GraphicsChoice) -> Picker {
    if choice == GraphicsChoice::Halfblocks
        || !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal())
    {
        let mut picker = Picker::halfblocks();
        if let Some(forced) = choice.forced_protocol() {
            picker.set_protocol_type(forced);
        }
        return picker;
    }
    let options = QueryStdioOptions {
        timeout: QUERY_TIMEOUT,
        ..QueryStdioOptions::default()
    };
    let mut picker =
        Picker::from_query_stdio_with_options(options).unwrap_or_else(|_| Picker::halfblocks());
    if let Some(forced) = choice.forced_protocol() {
        picker.set_protocol_type(forced);
    }
    picker
}

/// Everything the dashboard draws as a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKey {
    Samples,
    /// A test item drawn with a spec.
    Picture {
        item: usize,
        spec: PictureSpec,
    },
    /// The `index`th validation Grad-CAM made after `iteration`.
    ValidationCam {
        iteration: usize,
        index: usize,
    },
}

#[derive(Debug, Clone)]
pub enum Source {
    /// Asked of the gallery, not there yet.
    Requested,
    Ready(Arc<RgbImage>),
    Failed(String),
}

struct Slot {
    source: Source,
    encoded: Option<(Size, Protocol)>,
    /// An encoding for this size is under way.
    encoding: Option<Size>,
    last_used: u64,
}

/// What a view can show for a key at a size.
pub enum Shown<'a> {
    Encoded(&'a Protocol),
    /// The picture or its encoding is on its way.
    Pending,
    Failed(&'a str),
    /// Nobody asked for it (the view says why, e.g. "no samples").
    Missing,
}

/// Pictures kept this long after last use (in draws) survive eviction regardless of count.
const KEEP: usize = 64;

/// Pictures by key with their encodings; bounded, least recently drawn go first.
#[derive(Default)]
pub struct ImageStore {
    slots: HashMap<ImageKey, Slot>,
    clock: u64,
}

impl ImageStore {
    pub fn shown(&self, key: &ImageKey, size: Size) -> Shown<'_> {
        match self.slots.get(key) {
            None => Shown::Missing,
            Some(slot) => match (&slot.source, &slot.encoded) {
                (Source::Failed(message), _) => Shown::Failed(message),
                (_, Some((encoded_for, protocol))) if *encoded_for == size => {
                    Shown::Encoded(protocol)
                }
                _ => Shown::Pending,
            },
        }
    }

    pub fn contains(&self, key: &ImageKey) -> bool {
        self.slots.contains_key(key)
    }

    pub fn mark_requested(&mut self, key: ImageKey) {
        self.clock += 1;
        let clock = self.clock;
        self.slots.entry(key).or_insert(Slot {
            source: Source::Requested,
            encoded: None,
            encoding: None,
            last_used: clock,
        });
    }

    /// Stores a picture (or why there is none); a new picture drops the old encodings.
    pub fn put(&mut self, key: ImageKey, source: Result<RgbImage, String>) {
        self.clock += 1;
        let source = match source {
            Ok(image) => Source::Ready(Arc::new(image)),
            Err(message) => Source::Failed(message),
        };
        self.slots.insert(
            key,
            Slot {
                source,
                encoded: None,
                encoding: None,
                last_used: self.clock,
            },
        );
        self.evict();
    }

    /// Drops every picture `keep` says no to (e.g. older validation Grad-CAMs).
    pub fn retain(&mut self, mut keep: impl FnMut(&ImageKey) -> bool) {
        self.slots.retain(|key, _| keep(key));
    }

    /// The next encoding to make, if any: the first wanted picture that is ready but not encoded at
    /// its drawn size. Marks it as under way.
    pub fn next_encoding(
        &mut self,
        wanted: &[(ImageKey, Size)],
    ) -> Option<(ImageKey, Size, Arc<RgbImage>)> {
        self.clock += 1;
        let clock = self.clock;
        for (key, _) in wanted {
            if let Some(slot) = self.slots.get_mut(key) {
                slot.last_used = clock;
            }
        }
        wanted.iter().find_map(|(key, size)| {
            let slot = self.slots.get_mut(key)?;
            let Source::Ready(image) = &slot.source else {
                return None;
            };
            let done = slot.encoded.as_ref().is_some_and(|(s, _)| s == size);
            if done || slot.encoding.is_some() || size.width == 0 || size.height == 0 {
                return None;
            }
            slot.encoding = Some(*size);
            Some((*key, *size, Arc::clone(image)))
        })
    }

    pub fn encoding_busy(&self) -> bool {
        self.slots.values().any(|slot| slot.encoding.is_some())
    }

    pub fn put_encoding(&mut self, key: ImageKey, size: Size, result: Result<Protocol, String>) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        if slot.encoding == Some(size) {
            slot.encoding = None;
        }
        match result {
            Ok(protocol) => slot.encoded = Some((size, protocol)),
            Err(message) => {
                slot.source = Source::Failed(format!("cannot draw the picture: {message}"))
            }
        }
    }

    fn evict(&mut self) {
        let excess = self.slots.len().saturating_sub(KEEP);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(u64, ImageKey)> = self
            .slots
            .iter()
            .filter(|(_, slot)| {
                slot.encoding.is_none() && !matches!(slot.source, Source::Requested)
            })
            .map(|(key, slot)| (slot.last_used, *key))
            .collect();
        by_age.sort_by_key(|(age, _)| *age);
        for (_, key) in by_age.into_iter().take(excess) {
            self.slots.remove(&key);
        }
    }
}

/// Encodes a picture for the terminal at a cell size, scaled to fit while keeping its proportions.
pub fn encode(picker: &Picker, image: &RgbImage, size: Size) -> Result<Protocol, String> {
    let resize = ratatui_image::Resize::Scale(Some(ratatui_image::FilterType::Triangle));
    picker
        .new_protocol(image::DynamicImage::ImageRgb8(image.clone()), size, resize)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphics_choice_parses_every_documented_value() {
        for (text, choice) in [
            ("auto", GraphicsChoice::Auto),
            ("kitty", GraphicsChoice::Kitty),
            ("SIXEL", GraphicsChoice::Sixel),
            ("iterm2", GraphicsChoice::Iterm2),
            (" halfblocks ", GraphicsChoice::Halfblocks),
        ] {
            assert_eq!(text.parse::<GraphicsChoice>().unwrap(), choice);
            assert_eq!(
                choice.to_string().parse::<GraphicsChoice>().unwrap(),
                choice
            );
        }
        let err = "ascii".parse::<GraphicsChoice>().unwrap_err().to_string();
        assert!(err.contains("ascii") && err.contains("halfblocks"), "{err}");
        assert_eq!(
            GraphicsChoice::resolve(Some(GraphicsChoice::Kitty)).unwrap(),
            GraphicsChoice::Kitty
        );
    }

    #[test]
    fn forced_halfblocks_never_queries_the_terminal() {
        let picker = pick(GraphicsChoice::Halfblocks);
        assert_eq!(picker.protocol_type(), ProtocolType::Halfblocks);
    }

    #[test]
    fn encodings_are_made_once_per_size_and_dropped_with_their_picture() {
        let mut store = ImageStore::default();
        let key = ImageKey::Samples;
        let small = Size::new(10, 5);
        let large = Size::new(20, 10);
        assert!(matches!(store.shown(&key, small), Shown::Missing));
        store.mark_requested(key);
        assert!(matches!(store.shown(&key, small), Shown::Pending));
        assert!(
            store.next_encoding(&[(key, small)]).is_none(),
            "nothing to encode before the picture"
        );
        store.put(key, Ok(RgbImage::new(40, 40)));

        let (k, size, image) = store.next_encoding(&[(key, small)]).expect("encode job");
        assert_eq!((k, size), (key, small));
        assert!(store.encoding_busy());
        assert!(
            store.next_encoding(&[(key, small)]).is_none(),
            "one job per picture at a time"
        );
        let protocol = encode(&Picker::halfblocks(), &image, size).unwrap();
        assert!(protocol.size().width <= 10 && protocol.size().height <= 5);
        assert!(
            protocol.size().width >= 9 || protocol.size().height >= 4,
            "scaled up to fill the area"
        );
        store.put_encoding(key, size, Ok(protocol));
        assert!(matches!(store.shown(&key, small), Shown::Encoded(_)));
        assert!(
            store.next_encoding(&[(key, small)]).is_none(),
            "encoded once for this size"
        );
        assert!(
            store.next_encoding(&[(key, large)]).is_some(),
            "a new size needs a new encoding"
        );

        store.put(key, Err("decoder failed".into()));
        assert!(matches!(
            store.shown(&key, small),
            Shown::Failed("decoder failed")
        ));
    }

    #[test]
    fn the_store_stays_bounded_and_keeps_requests() {
        let mut store = ImageStore::default();
        let picture = |item| ImageKey::Picture {
            item,
            spec: PictureSpec::default(),
        };
        store.mark_requested(picture(9999));
        for item in 0..(KEEP + 20) {
            store.put(picture(item), Ok(RgbImage::new(2, 2)));
        }
        assert!(store.slots.len() <= KEEP + 1);
        assert!(
            store.contains(&picture(9999)),
            "a pending request is never evicted"
        );
        assert!(store.contains(&picture(KEEP + 19)), "the newest stays");
        assert!(!store.contains(&picture(0)), "the oldest went");
    }
}
