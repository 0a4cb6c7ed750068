//! Connected crack regions of a mask (8-connected), found a row at a time: runs of mask pixels
//! are joined to the touching runs of the row above with a union-find over region labels, so the
//! memory grows with the number of runs, never with a full-resolution label image.

use image::GrayImage;
use serde::Serialize;

/// One connected region: bounding box (inclusive-exclusive, in pixels) and area (pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub area: u64,
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    area: u64,
}

impl Stats {
    fn merge(&mut self, o: &Stats) {
        self.x0 = self.x0.min(o.x0);
        self.y0 = self.y0.min(o.y0);
        self.x1 = self.x1.max(o.x1);
        self.y1 = self.y1.max(o.y1);
        self.area += o.area;
    }
}

struct Labels {
    parent: Vec<usize>,
    stats: Vec<Stats>,
}

impl Labels {
    fn root(&mut self, mut l: usize) -> usize {
        while self.parent[l] != l {
            self.parent[l] = self.parent[self.parent[l]];
            l = self.parent[l];
        }
        l
    }

    fn union(&mut self, a: usize, b: usize) -> usize {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra == rb {
            return ra;
        }
        let (keep, gone) = (ra.min(rb), ra.max(rb));
        self.parent[gone] = keep;
        let s = self.stats[gone];
        self.stats[keep].merge(&s);
        keep
    }
}

/// The regions of nonzero pixels in `mask`, largest area first (ties: top to bottom).
pub fn regions(mask: &GrayImage) -> Vec<Region> {
    let width = mask.width() as usize;
    let mut labels = Labels {
        parent: Vec::new(),
        stats: Vec::new(),
    };
    // Runs of the previous row: (start, end exclusive, label).
    let mut above: Vec<(usize, usize, usize)> = Vec::new();
    let mut current = Vec::new();
    for (y, row) in mask.as_raw().chunks_exact(width.max(1)).enumerate() {
        current.clear();
        let mut x = 0;
        let mut k = 0; // first run above that may still touch
        while x < width {
            if row[x] == 0 {
                x += 1;
                continue;
            }
            let start = x;
            while x < width && row[x] != 0 {
                x += 1;
            }
            let label = labels.parent.len();
            labels.parent.push(label);
            labels.stats.push(Stats {
                x0: start as u32,
                y0: y as u32,
                x1: x as u32,
                y1: y as u32 + 1,
                area: (x - start) as u64,
            });
            // 8-connectivity: a run above touches if it overlaps start - 1 ..= x.
            while k < above.len() && above[k].1 < start {
                k += 1;
            }
            let mut j = k;
            let mut root = label;
            while j < above.len() && above[j].0 <= x {
                root = labels.union(root, above[j].2);
                j += 1;
            }
            current.push((start, x, root));
        }
        std::mem::swap(&mut above, &mut current);
    }
    let mut out: Vec<Region> = (0..labels.parent.len())
        .filter(|&l| labels.parent[l] == l)
        .map(|l| {
            let s = labels.stats[l];
            Region {
                x: s.x0,
                y: s.y0,
                width: s.x1 - s.x0,
                height: s.y1 - s.y0,
                area: s.area,
            }
        })
        .collect();
    out.sort_by(|a, b| b.area.cmp(&a.area).then(a.y.cmp(&b.y)).then(a.x.cmp(&b.x)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(rows: &[&str]) -> GrayImage {
        let (w, h) = (rows[0].len() as u32, rows.len() as u32);
        GrayImage::from_fn(w, h, |x, y| {
            image::Luma([if rows[y as usize].as_bytes()[x as usize] == b'#' {
                255
            } else {
                0
            }])
        })
    }

    #[test]
    fn regions_are_eight_connected_with_exact_boxes_and_areas() {
        let m = mask(&[
            "##....#.", ".#...#..", "..#.....", "........", "#.####..", "#..#.#..",
        ]);
        let r = regions(&m);
        assert_eq!(
            r,
            vec![
                Region {
                    x: 2,
                    y: 4,
                    width: 4,
                    height: 2,
                    area: 6
                },
                Region {
                    x: 0,
                    y: 0,
                    width: 3,
                    height: 3,
                    area: 4
                },
                Region {
                    x: 5,
                    y: 0,
                    width: 2,
                    height: 2,
                    area: 2
                },
                Region {
                    x: 0,
                    y: 4,
                    width: 1,
                    height: 2,
                    area: 2
                },
            ]
        );
        // A U shape whose arms join only at the bottom is one region.
        let u = mask(&["#..#", "#..#", "####"]);
        assert_eq!(regions(&u).len(), 1);
        assert_eq!(regions(&u)[0].area, 8);
        assert!(regions(&GrayImage::new(5, 4)).is_empty());
    }
}
