//! The cache of the dashboard's pictures and of their encodings for the terminal. A picture is
//! encoded once for the cell size it is drawn at, so paging back and forth over SSH sends nothing
//! twice. How pictures are drawn (which protocol, what cell size) is decided once, at start
//! (`termio`); encoding is `picture::encode`.

use std::collections::HashMap;
use std::sync::Arc;

use image::RgbImage;
use ratatui::layout::Size;

use super::picture::Picture;
use crate::app::gallery::PictureSpec;

pub use crate::termio::GraphicsChoice;

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
    encoded: Option<(Size, Picture)>,
    /// An encoding for this size is under way.
    encoding: Option<Size>,
    last_used: u64,
}

/// What a view can show for a key at a size.
pub enum Shown<'a> {
    Encoded(&'a Picture),
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

    pub fn put_encoding(&mut self, key: ImageKey, size: Size, result: Result<Picture, String>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::termio::Graphics;
    use crate::tui::picture::encode;

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
        let picture = encode(&Graphics::halfblocks(), &image, size).unwrap();
        assert!(picture.size().width <= 10 && picture.size().height <= 5);
        assert!(
            picture.size().width >= 9 || picture.size().height >= 4,
            "scaled up to fill the area"
        );
        store.put_encoding(key, size, Ok(picture));
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
