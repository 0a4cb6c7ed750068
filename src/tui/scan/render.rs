//! Pixels of the scan view: a photo's layers read from a scan folder once, and the part of them in
//! view drawn at the size the terminal shows it.
//!
//! A 100-megapixel photo must pan and zoom without delay, so nothing is redrawn at full
//! resolution: the photo and its mask are halved repeatedly once, when the photo is opened (a
//! pyramid, a third more memory), and each frame samples only the output's pixels from the
//! smallest level still at least as fine as the output. The crack map stays at cell resolution
//! (16 pixels a cell) and is interpolated at the output's pixels; windows and crack regions are
//! outlined in output coordinates, at least one output pixel wide at any zoom.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use image::{GrayImage, Rgb, RgbImage};
use rayon::prelude::*;

use super::truth::{grey, TruthLayers};
use crate::explain::colormap::{entry_for, Colormap};
use crate::scan::output::{PhotoRecord, RegionRecord, ScanRecord, WindowRecord};
use crate::scan::verdict::{self, Verdict};

/// Which layers are drawn over the photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Toggles {
    /// The crack map in the scan's colormap and opacity.
    pub map: bool,
    /// The binary mask, tinted.
    pub mask: bool,
    /// Outlines of the windows at or above the threshold.
    pub windows: bool,
    /// Outlines around the connected crack regions' boxes.
    pub regions: bool,
    /// Hits, misses and false alarms against the true mask, over the photo in grey (in place of
    /// the map and mask; see `truth`).
    pub truth: bool,
}

impl Default for Toggles {
    fn default() -> Self {
        Toggles {
            map: true,
            mask: false,
            windows: true,
            regions: true,
            truth: false,
        }
    }
}

/// A rectangle of the photo, in photo pixels (fractional: zoomed in, a pixel spans several on screen).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Tint of mask pixels: magenta, which none of the colormaps' ends use.
const MASK_TINT: [u8; 3] = [255, 0, 255];
const MASK_ALPHA: f32 = 0.6;
const OUTLINE: Rgb<u8> = Rgb([255, 255, 255]);
/// Region outlines: cyan, apart from the white windows and far from the hot end of the map that
/// the regions sit on.
pub const REGION_OUTLINE: Rgb<u8> = Rgb([0, 255, 255]);

/// One photo of a scan, ready to draw.
pub struct Layers {
    /// Level k is the photo halved k times (level 0: full resolution).
    photo: Vec<RgbImage>,
    /// The mask halved the same way, keeping a pixel set when any of its four was (thin cracks
    /// must not vanish when zoomed out).
    mask: Vec<GrayImage>,
    map: GrayImage,
    map_cell: u32,
    windows: Vec<WindowRecord>,
    regions: Vec<RegionRecord>,
    threshold: f32,
    colormap: [Rgb<u8>; 256],
    alpha: f32,
    /// Verdicts against the true mask, when the scan had masks.
    truth: Option<TruthLayers>,
    /// Set when the original photo could not be read and the overlay PNG stands in for it, or
    /// when its true mask could not be read.
    pub fallback: Option<String>,
}

impl Layers {
    /// Reads a photo's pictures: the original photo (upright), else the overlay PNG; the mask and
    /// the cell map from the folder.
    pub fn load(folder: &Path, record: &ScanRecord, photo: &PhotoRecord) -> Result<Layers> {
        let colormap: Colormap = record
            .colormap
            .parse()
            .map_err(|e: String| anyhow::anyhow!("{}: {e}", folder.display()))?;
        let (base, fallback) = match crate::scan::photo::load_upright(&photo.photo) {
            Ok(image) if image.dimensions() == (photo.width, photo.height) => (image, None),
            outcome => {
                let why = match outcome {
                    Ok(image) => format!(
                        "{} is now {}x{}, not {}x{} as scanned",
                        photo.photo.display(),
                        image.width(),
                        image.height(),
                        photo.width,
                        photo.height
                    ),
                    Err(e) => format!("{e:#}"),
                };
                let overlay = read_rgb(&folder.join(&photo.overlay))?;
                (
                    overlay,
                    Some(format!(
                        "{why}; showing the overlay (map and windows painted in)"
                    )),
                )
            }
        };
        let size = (photo.width, photo.height);
        ensure!(
            base.dimensions() == size,
            "{} is {}x{}, the scan says {}x{}",
            folder.join(&photo.overlay).display(),
            base.width(),
            base.height(),
            size.0,
            size.1
        );
        let mask_path = folder.join(&photo.mask);
        let mask = read_grey(&mask_path)?;
        ensure!(
            mask.dimensions() == size,
            "{} is {}x{}, its photo {}x{}",
            mask_path.display(),
            mask.width(),
            mask.height(),
            size.0,
            size.1
        );
        let map = read_grey(&folder.join(&photo.map))?;
        let (truth, fallback) =
            match TruthLayers::load(record, photo, &mask, |v| pyramid(v, halve_max)) {
                Ok(truth) => (truth, fallback),
                Err(e) => {
                    let note = format!("{e:#}; no errors layer");
                    let both = fallback.map_or(note.clone(), |f| format!("{f}; {note}"));
                    (None, Some(both))
                }
            };
        Ok(Layers {
            photo: pyramid(base, halve_rgb),
            mask: pyramid(mask, halve_max),
            map,
            map_cell: photo.map_cell,
            windows: photo.windows.clone(),
            regions: photo.region_boxes.clone(),
            threshold: record.threshold,
            colormap: colormap.table(),
            alpha: record.alpha,
            truth,
            fallback,
        })
    }

    /// The photo's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.photo[0].dimensions()
    }

    /// Draws `view` of the photo into a picture of `out` pixels (the caller keeps proportions),
    /// with the region `selected` (index into the record's boxes) outlined twice as thick.
    /// Rows are drawn in parallel; each reads only the pixels it shows.
    pub fn render(
        &self,
        view: Viewport,
        out: (u32, u32),
        toggles: Toggles,
        selected: Option<usize>,
    ) -> RgbImage {
        let (ow, oh) = (out.0.max(1), out.1.max(1));
        // Output pixels per photo pixel.
        let scale = (ow as f64 / view.width).min(oh as f64 / view.height);
        // The smallest level whose pixels are no larger than the output's.
        let level = (0..self.photo.len())
            .take_while(|&k| (1u64 << k) as f64 <= 1.0 / scale)
            .last()
            .unwrap_or(0);
        let photo = &self.photo[level];
        let mask = &self.mask[level];
        let factor = (1u64 << level) as f64;
        let (full_w, full_h) = self.size();
        // Photo pixel under each output column and row.
        let under = |o: u32, origin: f64, len: u32| {
            (origin + (o as f64 + 0.5) / scale).clamp(0.0, len as f64 - 0.5)
        };
        let at_level = |p: f64, len: u32| ((p / factor) as usize).min(len as usize - 1);
        let columns: Vec<(usize, (u32, u32, f32))> = (0..ow)
            .map(|o| {
                let x = under(o, view.x, full_w);
                (
                    at_level(x, photo.width()),
                    taps(x, self.map_cell, self.map.width()),
                )
            })
            .collect();
        let (pw, mw) = (photo.width() as usize, self.map.width() as usize);
        let (photo_raw, mask_raw, map_raw) = (photo.as_raw(), mask.as_raw(), self.map.as_raw());
        let truth = self.truth.as_ref().filter(|_| toggles.truth);
        // The level's pixels each output pixel covers (first and last), for the verdicts.
        let span = |o: u32, origin: f64, full: u32, level_len: u32| {
            let edge = |p: f64| at_level(p.clamp(0.0, full as f64 - 0.5), level_len);
            (
                edge(origin + o as f64 / scale),
                edge(origin + (o + 1) as f64 / scale - 1e-6),
            )
        };
        let x_spans: Vec<(usize, usize)> = match truth {
            Some(_) => (0..ow)
                .map(|o| span(o, view.x, full_w, photo.width()))
                .collect(),
            None => Vec::new(),
        };
        let mut out_image = RgbImage::new(ow, oh);
        out_image
            .as_mut()
            .par_chunks_mut(ow as usize * 3)
            .enumerate()
            .for_each(|(oy, line)| {
                let y = under(oy as u32, view.y, full_h);
                let ly = at_level(y, photo.height());
                let (r0, r1, ty) = taps(y, self.map_cell, self.map.height());
                let (row0, row1) = (r0 as usize * mw, r1 as usize * mw);
                let y_span = span(oy as u32, view.y, full_h, photo.height());
                for (o, (px, &(lx, (c0, c1, tx)))) in
                    line.chunks_exact_mut(3).zip(&columns).enumerate()
                {
                    let at = ly * pw + lx;
                    let mut rgb = [
                        photo_raw[3 * at],
                        photo_raw[3 * at + 1],
                        photo_raw[3 * at + 2],
                    ];
                    if let Some(truth) = truth {
                        rgb = grey(rgb);
                        if let Some(colour) = truth.tint(level, x_spans[o], y_span) {
                            blend(&mut rgb, colour.0, verdict::TINT_ALPHA);
                        }
                        px.copy_from_slice(&rgb);
                        continue;
                    }
                    if toggles.map {
                        let v = |i: usize| map_raw[i] as f32 / 255.0;
                        let (c0, c1) = (c0 as usize, c1 as usize);
                        let top = v(row0 + c0) + tx * (v(row0 + c1) - v(row0 + c0));
                        let bottom = v(row1 + c0) + tx * (v(row1 + c1) - v(row1 + c0));
                        let heat = self.colormap[entry_for(top + ty * (bottom - top))].0;
                        blend(&mut rgb, heat, self.alpha);
                    }
                    if toggles.mask && mask_raw[at] > 0 {
                        blend(&mut rgb, MASK_TINT, MASK_ALPHA);
                    }
                    px.copy_from_slice(&rgb);
                }
            });
        if let (true, Some(truth)) = (toggles.windows, truth) {
            self.outline_verdicts(&mut out_image, truth, view, scale);
        } else if toggles.windows {
            let cracked = self
                .windows
                .iter()
                .filter(|w| w.probability >= self.threshold)
                .map(|win| out_box((win.x, win.y, win.size, win.size), view, scale));
            let window_pixels = self.windows.first().map_or(0.0, |w| w.size as f64 * scale);
            if window_pixels < FINE_WINDOW_PIXELS {
                outline_union(&mut out_image, cracked, OUTLINE);
            } else {
                for edges in cracked {
                    outline(&mut out_image, edges, OUTLINE);
                }
            }
        }
        if toggles.regions {
            // Just outside the box: the box's own edge pixels are crack pixels, left to be seen.
            for (i, r) in self.regions.iter().enumerate() {
                let (x0, y0, x1, y1) = out_box((r.x, r.y, r.width, r.height), view, scale);
                let rings = if selected == Some(i) { 2 } else { 1 };
                for ring in 1..=rings {
                    let edges = (x0 - ring, y0 - ring, x1 + ring, y1 + ring);
                    outline(&mut out_image, edges, REGION_OUTLINE);
                }
            }
        }
        out_image
    }
}

impl Layers {
    /// Window outlines by verdict (hits first, errors over them), one soft outline per verdict
    /// where windows are small on screen.
    fn outline_verdicts(
        &self,
        image: &mut RgbImage,
        truth: &TruthLayers,
        view: Viewport,
        scale: f64,
    ) {
        let fine = self.windows.first().map_or(0.0, |w| w.size as f64 * scale) < FINE_WINDOW_PIXELS;
        for kind in [
            Verdict::Unscored,
            Verdict::Hit,
            Verdict::FalseAlarm,
            Verdict::Miss,
        ] {
            let colour = kind.colour().expect("a verdict with a colour");
            let boxes = self
                .windows
                .iter()
                .zip(&truth.windows)
                .filter(|(_, v)| **v == kind)
                .map(|(w, _)| out_box((w.x, w.y, w.size, w.size), view, scale));
            if fine {
                outline_union(image, boxes, colour);
            } else {
                boxes.for_each(|edges| outline(image, edges, colour));
            }
        }
    }
}

/// The output pixels (first and last column, first and last row, inclusive) that a box of photo
/// pixels (x, y, width, height) covers in `view` at `scale`; at least one pixel each way, so a
/// box far smaller than an output pixel still shows when zoomed out.
pub(super) fn out_box(b: (u32, u32, u32, u32), view: Viewport, scale: f64) -> (i64, i64, i64, i64) {
    let to_out = |p: u64, origin: f64| ((p as f64 - origin) * scale).round() as i64;
    let (x, y) = (u64::from(b.0), u64::from(b.1));
    let (x0, y0) = (to_out(x, view.x), to_out(y, view.y));
    let x1 = (to_out(x + u64::from(b.2), view.x) - 1).max(x0);
    let y1 = (to_out(y + u64::from(b.3), view.y) - 1).max(y0);
    (x0, y0, x1, y1)
}

/// Draws the border of the rectangle (x0, y0)..=(x1, y1) of output pixels, clipped to the image.
pub(super) fn outline(
    image: &mut RgbImage,
    (x0, y0, x1, y1): (i64, i64, i64, i64),
    colour: Rgb<u8>,
) {
    let (w, h) = (image.width() as i64, image.height() as i64);
    if x1 < 0 || y1 < 0 || x0 >= w || y0 >= h {
        return;
    }
    let mut set = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            image.put_pixel(x as u32, y as u32, colour);
        }
    };
    for x in x0.max(0)..=x1.min(w - 1) {
        set(x, y0);
        set(x, y1);
    }
    for y in y0.max(0)..=y1.min(h - 1) {
        set(x0, y);
        set(x1, y);
    }
}

/// Windows smaller than this on screen (pixels a side: half blocks, a zoomed-out photo) are not
/// outlined one by one: overlapping at half a window, their outlines would cover the photo.
const FINE_WINDOW_PIXELS: f64 = 16.0;
/// How much of white the outline around the crack windows takes at low resolution.
const UNION_OUTLINE_ALPHA: f32 = 0.6;

/// Outlines the area the boxes cover together, half-transparent: where windows are a few pixels
/// on screen, the crack windows' extent shows without a grid of lines over the photo.
fn outline_union(
    image: &mut RgbImage,
    boxes: impl Iterator<Item = (i64, i64, i64, i64)>,
    colour: Rgb<u8>,
) {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let mut inside = vec![false; (w * h) as usize];
    for (x0, y0, x1, y1) in boxes {
        for y in y0.max(0)..=y1.min(h - 1) {
            for x in x0.max(0)..=x1.min(w - 1) {
                inside[(y * w + x) as usize] = true;
            }
        }
    }
    let covered =
        |x: i64, y: i64| (0..w).contains(&x) && (0..h).contains(&y) && inside[(y * w + x) as usize];
    for y in 0..h {
        for x in 0..w {
            let edge = covered(x, y)
                && [(-1, 0), (1, 0), (0, -1), (0, 1)].iter().any(|(dx, dy)| {
                    let (nx, ny) = (x + dx, y + dy);
                    (0..w).contains(&nx) && (0..h).contains(&ny) && !covered(nx, ny)
                });
            if edge {
                let pixel = image.get_pixel_mut(x as u32, y as u32);
                blend(&mut pixel.0, colour.0, UNION_OUTLINE_ALPHA);
            }
        }
    }
}

/// Bilinear taps along one axis of the cell map for photo coordinate `p`: the two cells around it
/// and the second's weight (cell j's value sits at `cell` j + `cell` / 2, as `scan` builds it).
fn taps(p: f64, cell: u32, cells: u32) -> (u32, u32, f32) {
    let last = cells.saturating_sub(1);
    let u = ((p - cell as f64 / 2.0) / cell as f64).clamp(0.0, last as f64);
    let j0 = u.floor() as u32;
    (j0, (j0 + 1).min(last), (u - j0 as f64) as f32)
}

/// `alpha` of `over` on `rgb`, in 1/256ths (display only: within one level of the overlay PNG's
/// float blend, at a fraction of its cost per pixel).
fn blend(rgb: &mut [u8; 3], over: [u8; 3], alpha: f32) {
    let a = (alpha.clamp(0.0, 1.0) * 256.0).round() as u32;
    for (c, o) in rgb.iter_mut().zip(over) {
        *c = ((a * o as u32 + (256 - a) * *c as u32 + 128) >> 8) as u8;
    }
}

/// Levels down to a few hundred pixels: below that, zooming out has nothing left to show.
const SMALLEST_LEVEL: u32 = 256;

fn pyramid<I>(full: I, halve: fn(&I) -> I) -> Vec<I>
where
    I: Dimensions,
{
    let mut levels = vec![full];
    loop {
        let last = levels.last().expect("level 0");
        let (w, h) = last.dims();
        if w.max(h) <= SMALLEST_LEVEL || w < 2 || h < 2 {
            return levels;
        }
        let next = halve(last);
        levels.push(next);
    }
}

trait Dimensions {
    fn dims(&self) -> (u32, u32);
}

impl Dimensions for RgbImage {
    fn dims(&self) -> (u32, u32) {
        self.dimensions()
    }
}

impl Dimensions for GrayImage {
    fn dims(&self) -> (u32, u32) {
        self.dimensions()
    }
}

/// Half the size (rounded up), each pixel the mean of the (up to) four it covers.
fn halve_rgb(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
    RgbImage::from_fn(hw, hh, |x, y| {
        let mut sum = [0u32; 3];
        let mut n = 0;
        for (sx, sy) in quad(x, y, w, h) {
            for (s, c) in sum.iter_mut().zip(image.get_pixel(sx, sy).0) {
                *s += c as u32;
            }
            n += 1;
        }
        Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
    })
}

/// Half the size (rounded up), each pixel the largest of the four it covers.
fn halve_max(image: &GrayImage) -> GrayImage {
    let (w, h) = image.dimensions();
    GrayImage::from_fn(w.div_ceil(2), h.div_ceil(2), |x, y| {
        let max = quad(x, y, w, h)
            .map(|(sx, sy)| image.get_pixel(sx, sy).0[0])
            .max()
            .unwrap_or(0);
        image::Luma([max])
    })
}

/// The pixels of a `w` x `h` image that pixel (x, y) of its half covers.
fn quad(x: u32, y: u32, w: u32, h: u32) -> impl Iterator<Item = (u32, u32)> {
    [(0, 0), (1, 0), (0, 1), (1, 1)]
        .into_iter()
        .map(move |(dx, dy)| (2 * x + dx, 2 * y + dy))
        .filter(move |&(sx, sy)| sx < w && sy < h)
}

fn read_rgb(path: &PathBuf) -> Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .into_rgb8())
}

fn read_grey(path: &PathBuf) -> Result<GrayImage> {
    Ok(image::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .into_luma8())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A scan folder with one photo of `w` x `h`: a grey photo, a mask with one vertical line at
    /// x = w / 2 (one region, boxed), a map that is 1 on the cells of that line, one window over it
    /// at p = 0.9 and one elsewhere at p = 0.1. Returns the folder and its record.
    pub fn folder_with_photo(dir: &Path, w: u32, h: u32) -> ScanRecord {
        let photo_path = dir.join("wall.png");
        RgbImage::from_pixel(w, h, Rgb([100, 100, 100]))
            .save(&photo_path)
            .unwrap();
        let mask = GrayImage::from_fn(w, h, |x, _| image::Luma([if x == w / 2 { 255 } else { 0 }]));
        mask.save(dir.join("wall-mask.png")).unwrap();
        let (cols, rows) = (w.div_ceil(16), h.div_ceil(16));
        GrayImage::from_fn(cols, rows, |c, _| {
            image::Luma([if c == (w / 2) / 16 { 255 } else { 0 }])
        })
        .save(dir.join("wall-map.png"))
        .unwrap();
        let record = ScanRecord::for_test(vec![PhotoRecord {
            photo: photo_path,
            crack_fraction: 1.0 / w as f64,
            regions: 1,
            region_boxes: vec![RegionRecord {
                x: w / 2,
                y: 0,
                width: 1,
                height: h,
                area: h as u64,
            }],
            windows: vec![
                WindowRecord {
                    x: w / 2 - 16,
                    y: 0,
                    size: 32,
                    probability: 0.9,
                    score: None,
                },
                WindowRecord {
                    x: 0,
                    y: 0,
                    size: 32,
                    probability: 0.1,
                    score: None,
                },
            ],
            ..PhotoRecord::for_test("wall", w, h)
        }]);
        crate::scan::output::write(dir, &record).unwrap();
        record
    }

    fn whole(layers: &Layers) -> Viewport {
        let (w, h) = layers.size();
        Viewport {
            x: 0.0,
            y: 0.0,
            width: w as f64,
            height: h as f64,
        }
    }

    /// At half-block resolution (issue 20) the white outlines of overlapping crack windows covered
    /// most of the photo: there, only the extent of the crack windows is outlined, softly.
    #[test]
    fn at_low_resolution_crack_windows_are_one_soft_outline_not_a_grid() {
        let dir = tempfile::tempdir().unwrap();
        let record = folder_with_photo(dir.path(), 128, 64);
        let mut layers = Layers::load(dir.path(), &record, &record.photos[0]).unwrap();
        // Crack windows of 32 px at a stride of 16 over the left 80 x 48 pixels.
        layers.windows = (0..4)
            .flat_map(|j| {
                (0..2).map(move |i| WindowRecord {
                    x: j * 16,
                    y: i * 16,
                    size: 32,
                    probability: 0.9,
                    score: None,
                })
            })
            .collect();
        let windows_only = Toggles {
            map: false,
            mask: false,
            windows: true,
            regions: false,
            truth: false,
        };
        let photo = [100, 100, 100];
        // 32 x 16 pixels: a window is 8 pixels, as in half blocks.
        let small = layers.render(whole(&layers), (32, 16), windows_only, None);
        let changed = small.pixels().filter(|p| p.0 != photo).count();
        assert!(
            changed * 8 < small.pixels().count(),
            "{changed} of 512 pixels covered"
        );
        assert!(
            small.pixels().all(|p| p.0 != [255, 255, 255]),
            "see-through"
        );
        // The crack windows' extent (output pixels 0-19 x 0-11) is outlined on its inner edge.
        assert_ne!(small.get_pixel(19, 5).0, photo);
        assert_ne!(small.get_pixel(5, 11).0, photo);
        assert_eq!(small.get_pixel(10, 5).0, photo, "inside stays the photo");
        // At full resolution every window keeps its outline.
        let full = layers.render(whole(&layers), (128, 64), windows_only, None);
        assert_eq!(full.get_pixel(16, 5).0, [255, 255, 255]);
        assert_eq!(full.get_pixel(32, 5).0, [255, 255, 255]);
    }

    #[test]
    fn layers_toggle_independently_and_windows_below_threshold_stay_plain() {
        let dir = tempfile::tempdir().unwrap();
        let record = folder_with_photo(dir.path(), 128, 64);
        let layers = Layers::load(dir.path(), &record, &record.photos[0]).unwrap();
        assert!(layers.fallback.is_none());
        let none = Toggles {
            map: false,
            mask: false,
            windows: false,
            regions: false,
            truth: false,
        };
        let plain = layers.render(whole(&layers), (128, 64), none, None);
        assert!(
            plain.pixels().all(|p| p.0 == [100, 100, 100]),
            "only the photo"
        );

        let masked = layers.render(
            whole(&layers),
            (128, 64),
            Toggles { mask: true, ..none },
            None,
        );
        assert_ne!(
            masked.get_pixel(64, 30).0,
            [100, 100, 100],
            "the mask line is tinted"
        );
        assert_eq!(masked.get_pixel(10, 30).0, [100, 100, 100]);

        let mapped = layers.render(
            whole(&layers),
            (128, 64),
            Toggles { map: true, ..none },
            None,
        );
        // The map is hot on the line's cells and cold (the colormap's low end) far away.
        assert_ne!(mapped.get_pixel(72, 30).0, mapped.get_pixel(8, 30).0);

        let outlined = layers.render(
            whole(&layers),
            (128, 64),
            Toggles {
                windows: true,
                ..none
            },
            None,
        );
        assert_eq!(
            outlined.get_pixel(48, 10).0,
            [255, 255, 255],
            "left edge of the 0.9 window"
        );
        assert_eq!(
            outlined.get_pixel(0, 10).0,
            [100, 100, 100],
            "the 0.1 window is not outlined"
        );
    }

    #[test]
    fn zoomed_out_the_mask_survives_and_zoomed_in_pixels_grow() {
        let dir = tempfile::tempdir().unwrap();
        let record = folder_with_photo(dir.path(), 1024, 512);
        let layers = Layers::load(dir.path(), &record, &record.photos[0]).unwrap();
        assert!(layers.photo.len() >= 3, "a pyramid was built");
        let mask_only = Toggles {
            map: false,
            mask: true,
            windows: false,
            regions: false,
            truth: false,
        };
        // A quarter of the size: the one-pixel line is still there.
        let small = layers.render(whole(&layers), (256, 128), mask_only, None);
        assert!((0..256).any(|x| small.get_pixel(x, 64).0 != [100, 100, 100]));
        // 8 photo pixels around the line blown up to 64: the line is 8 output pixels wide.
        let view = Viewport {
            x: 508.0,
            y: 100.0,
            width: 8.0,
            height: 4.0,
        };
        let big = layers.render(view, (64, 32), mask_only, None);
        let tinted = (0..64).filter(|&x| big.get_pixel(x, 16).0 != [100, 100, 100]);
        assert_eq!(tinted.collect::<Vec<_>>(), (32..40).collect::<Vec<_>>());
    }

    #[test]
    fn region_outlines_surround_the_box_at_any_zoom() {
        let dir = tempfile::tempdir().unwrap();
        let record = folder_with_photo(dir.path(), 1024, 512);
        let layers = Layers::load(dir.path(), &record, &record.photos[0]).unwrap();
        let regions_only = Toggles {
            map: false,
            mask: false,
            windows: false,
            regions: true,
            truth: false,
        };
        let cyan = |image: &RgbImage, y: u32| -> Vec<u32> {
            (0..image.width())
                .filter(|&x| *image.get_pixel(x, y) == REGION_OUTLINE)
                .collect()
        };
        // One to one: the columns either side of the one-pixel line, the line itself left alone.
        let view = Viewport {
            x: 480.0,
            y: 0.0,
            width: 64.0,
            height: 32.0,
        };
        let same = layers.render(view, (64, 32), regions_only, None);
        assert_eq!(cyan(&same, 10), [31, 33]);
        assert_eq!(same.get_pixel(32, 10).0, [100, 100, 100]);
        // A quarter of the size: the line is a quarter of an output pixel, still outlined.
        let small = layers.render(whole(&layers), (256, 128), regions_only, None);
        assert_eq!(cyan(&small, 64), [127, 129]);
        // Eight times the size: the line is 8 output pixels wide, outlined just outside them.
        let view = Viewport {
            x: 508.0,
            y: 100.0,
            width: 8.0,
            height: 4.0,
        };
        let big = layers.render(view, (64, 32), regions_only, None);
        assert_eq!(cyan(&big, 16), [31, 40]);
        // The region jumped to: two pixels thick.
        let marked = layers.render(view, (64, 32), regions_only, Some(0));
        assert_eq!(cyan(&marked, 16), [30, 31, 40, 41]);
        // Off, nothing is drawn.
        let off = layers.render(
            view,
            (64, 32),
            Toggles {
                regions: false,
                ..regions_only
            },
            None,
        );
        assert!(cyan(&off, 16).is_empty());
    }

    #[test]
    fn a_missing_photo_falls_back_to_the_overlay_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let record = folder_with_photo(dir.path(), 64, 32);
        RgbImage::from_pixel(64, 32, Rgb([1, 2, 3]))
            .save(dir.path().join("wall-overlay.png"))
            .unwrap();
        std::fs::remove_file(&record.photos[0].photo).unwrap();
        let layers = Layers::load(dir.path(), &record, &record.photos[0]).unwrap();
        let note = layers.fallback.clone().unwrap();
        assert!(
            note.contains("wall.png") && note.contains("overlay"),
            "{note}"
        );
        std::fs::remove_file(dir.path().join("wall-mask.png")).unwrap();
        let message = format!(
            "{:#}",
            Layers::load(dir.path(), &record, &record.photos[0])
                .err()
                .unwrap()
        );
        assert!(message.contains("wall-mask.png"), "{message}");
    }
}
