//! Pictures in the terminal: which graphics protocol to use (asked of the terminal once, with a
//! bounded wait), and the cache of pictures and of their encodings. A picture is encoded once for the
//! cell size it is drawn at, so paging back and forth over SSH sends nothing twice.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use image::RgbImage;
use ratatui::layout::Size;
use ratatui_image::picker::cap_parser::{Parser, QueryStdioOptions, Response};
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::FontSize;

use super::input::{Read, TtyInput};
use crate::app::gallery::PictureSpec;

pub use crate::imaging::terminal::GraphicsChoice;

/// How long the terminal may take to answer the capability query before half blocks are used.
const QUERY_TIMEOUT: Duration = Duration::from_millis(1000);

/// The protocol the user forced, if any.
fn forced_protocol(choice: GraphicsChoice) -> Option<ProtocolType> {
    match choice {
        GraphicsChoice::Auto => None,
        GraphicsChoice::Kitty => Some(ProtocolType::Kitty),
        GraphicsChoice::Sixel => Some(ProtocolType::Sixel),
        GraphicsChoice::Iterm2 => Some(ProtocolType::Iterm2),
        GraphicsChoice::Halfblocks => Some(ProtocolType::Halfblocks),
    }
}

/// Decides how pictures are drawn. Must run after raw mode is on and before the keyboard reader
/// starts: the terminal answers the query on its input. The wait is bounded by [`QUERY_TIMEOUT`];
/// a terminal that does not answer in time gets half blocks (or the forced protocol), and its late
/// answer is skipped by the keyboard reader. ratatui-image's own query is not used because on a
/// timeout it leaves a thread reading the terminal, which would eat the user's keys.
pub fn pick(choice: GraphicsChoice, tty: &TtyInput) -> Picker {
    let detected = if choice == GraphicsChoice::Halfblocks {
        Detected::default()
    } else {
        // Also switches tmux passthrough on, so the query reaches the terminal outside tmux.
        let is_tmux = Picker::halfblocks().tmux_detected();
        query(tty, is_tmux).unwrap_or_default()
    };
    let cell = detected.cell.or_else(cell_size_from_window);
    let picker = match cell {
        // ratatui-image offers no other way to give the cell size it did not query itself.
        #[allow(deprecated)]
        Some((width, height)) => Picker::from_fontsize(FontSize::new(width, height)),
        // Without a cell size no other protocol can place pictures.
        None => Picker::halfblocks(),
    };
    configure(picker, choice, &detected, cell.is_some())
}

/// The protocol: forced by the user, else kitty, sixel, the environment's hint (iTerm2), half blocks.
fn configure(
    mut picker: Picker,
    choice: GraphicsChoice,
    detected: &Detected,
    cell_known: bool,
) -> Picker {
    let protocol = match forced_protocol(choice) {
        Some(forced) => forced,
        None if !cell_known => ProtocolType::Halfblocks,
        None if detected.kitty => ProtocolType::Kitty,
        None if detected.sixel => ProtocolType::Sixel,
        None => picker.protocol_type(),
    };
    picker.set_protocol_type(protocol);
    picker
}

/// What the terminal said about itself.
#[derive(Debug, Default, PartialEq)]
struct Detected {
    kitty: bool,
    sixel: bool,
    /// Pixels per cell (width, height).
    cell: Option<(u16, u16)>,
}

/// Collects the answers to ratatui-image's capability query until the final status report.
#[derive(Default)]
struct Detector {
    parser: Parser,
    detected: Detected,
}

impl Detector {
    /// True once the terminal has answered everything.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &byte in bytes {
            for response in self.parser.push(char::from(byte)) {
                match response {
                    Response::Kitty => self.detected.kitty = true,
                    Response::Sixel => self.detected.sixel = true,
                    Response::CellSize(Some(cell)) => self.detected.cell = Some(cell),
                    Response::Status => return true,
                    _ => {}
                }
            }
        }
        false
    }
}

/// Writes the query and reads the answers until the status report or the timeout.
fn query(tty: &TtyInput, is_tmux: bool) -> Option<Detected> {
    let mut options = QueryStdioOptions {
        timeout: QUERY_TIMEOUT,
        ..QueryStdioOptions::default()
    };
    // As ratatui-image does: these terminals answer for protocols they do not draw well.
    if ["WEZTERM_EXECUTABLE", "KONSOLE_VERSION"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
    {
        options.blacklist_protocols = vec![ProtocolType::Kitty, ProtocolType::Sixel];
    }
    let mut out = std::io::stdout();
    out.write_all(Parser::query(is_tmux, options).as_bytes())
        .ok()?;
    out.flush().ok()?;
    let deadline = Instant::now() + QUERY_TIMEOUT;
    let mut detector = Detector::default();
    let mut buffer = [0u8; 256];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tty.read(&mut buffer, left) {
            Read::Bytes(n) if detector.feed(&buffer[..n]) => return Some(detector.detected),
            Read::Bytes(_) | Read::Nothing => {}
            Read::Closed => return None,
        }
    }
}

/// Cell size from the window's size in pixels, for terminals that report that but not the cell.
fn cell_size_from_window() -> Option<(u16, u16)> {
    let size = crossterm::terminal::window_size().ok()?;
    if size.width == 0 || size.height == 0 || size.columns == 0 || size.rows == 0 {
        return None;
    }
    Some((size.width / size.columns, size.height / size.rows))
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

/// Test pictures kept; beyond this many, the least recently drawn go first.
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
            // Only test pictures come and go; the samples and the current validation Grad-CAMs
            // are few and fetched once.
            .filter(|(key, slot)| {
                matches!(key, ImageKey::Picture { .. })
                    && slot.encoding.is_none()
                    && !matches!(slot.source, Source::Requested)
            })
            .map(|(key, slot)| (slot.last_used, *key))
            .collect();
        by_age.sort_by_key(|(age, _)| *age);
        for (_, key) in by_age.into_iter().take(excess) {
            self.slots.remove(&key);
        }
    }
}

/// Encodes a picture for the terminal to fit a cell size, keeping its proportions. Half blocks
/// (about two pixels a cell) are scaled up to fill the area; real graphics protocols send pixels,
/// so a picture is never enlarged beyond the resolution the gallery gave it: kitty sends 4 bytes a
/// pixel, and blowing a 227-pixel picture up to a full window would cost megabytes over SSH.
pub fn encode(picker: &Picker, image: &RgbImage, size: Size) -> Result<Protocol, String> {
    use ratatui_image::{FilterType, Resize};
    let resize = if picker.protocol_type() == ProtocolType::Halfblocks {
        Resize::Scale(Some(FilterType::Triangle))
    } else {
        Resize::Fit(Some(FilterType::Triangle))
    };
    picker
        .new_protocol(image::DynamicImage::ImageRgb8(image.clone()), size, resize)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_answers_are_read_until_the_status_report() {
        let mut detector = Detector::default();
        // kitty graphics OK, device attributes with sixel (4), cell size, then the status report.
        assert!(!detector.feed(b"\x1b_Gi=31;OK\x1b\\\x1b[?64;4c"));
        assert!(detector.feed(b"\x1b[6;20;10t\x1b[0n"));
        assert_eq!(
            detector.detected,
            Detected {
                kitty: true,
                sixel: true,
                cell: Some((10, 20))
            }
        );

        let mut plain = Detector::default();
        assert!(plain.feed(b"\x1b[?62;22c\x1b[0n"));
        assert_eq!(plain.detected, Detected::default());
    }

    #[test]
    fn protocol_preference_and_forced_choices() {
        let kitty_and_sixel = Detected {
            kitty: true,
            sixel: true,
            cell: Some((10, 20)),
        };
        let sixel = Detected {
            sixel: true,
            ..Detected::default()
        };
        let choose = |choice, detected: &Detected, cell_known| {
            configure(Picker::halfblocks(), choice, detected, cell_known).protocol_type()
        };
        assert_eq!(
            choose(GraphicsChoice::Auto, &kitty_and_sixel, true),
            ProtocolType::Kitty
        );
        assert_eq!(
            choose(GraphicsChoice::Auto, &sixel, true),
            ProtocolType::Sixel
        );
        assert_eq!(
            choose(GraphicsChoice::Auto, &sixel, false),
            ProtocolType::Halfblocks
        );
        assert_eq!(
            choose(GraphicsChoice::Auto, &Detected::default(), true),
            ProtocolType::Halfblocks
        );
        assert_eq!(
            choose(GraphicsChoice::Iterm2, &sixel, false),
            ProtocolType::Iterm2
        );
        assert_eq!(
            choose(GraphicsChoice::Halfblocks, &kitty_and_sixel, true),
            ProtocolType::Halfblocks
        );
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
    fn graphics_protocols_never_enlarge_pictures_but_half_blocks_fill() {
        let picture = RgbImage::new(100, 100);
        let area = Size::new(60, 30);
        let mut kitty = Picker::halfblocks();
        kitty.set_protocol_type(ProtocolType::Kitty);
        // 100 pixels at the nominal 10x20-pixel cell.
        assert_eq!(
            encode(&kitty, &picture, area).unwrap().size(),
            Size::new(10, 5)
        );
        let filled = encode(&Picker::halfblocks(), &picture, area)
            .unwrap()
            .size();
        assert_eq!(filled.height, 30, "{filled:?}");
        // A picture larger than the area is shrunk by every protocol.
        let large = RgbImage::new(2000, 2000);
        let shrunk = encode(&kitty, &large, area).unwrap().size();
        assert!(shrunk.width <= 60 && shrunk.height == 30, "{shrunk:?}");
    }

    #[test]
    fn the_store_stays_bounded_and_keeps_requests_and_samples() {
        let mut store = ImageStore::default();
        store.put(ImageKey::Samples, Ok(RgbImage::new(2, 2)));
        let picture = |item| ImageKey::Picture {
            item,
            spec: PictureSpec::default(),
        };
        store.mark_requested(picture(9999));
        for item in 0..(KEEP + 20) {
            store.put(picture(item), Ok(RgbImage::new(2, 2)));
        }
        assert!(store.slots.len() <= KEEP + 2);
        assert!(
            store.contains(&picture(9999)),
            "a pending request is never evicted"
        );
        assert!(
            store.contains(&ImageKey::Samples),
            "the samples are never evicted"
        );
        assert!(store.contains(&picture(KEEP + 19)), "the newest stays");
        assert!(!store.contains(&picture(0)), "the oldest went");
    }
}
