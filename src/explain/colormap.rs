//! Colour tables for heatmaps: MATLAB's 256-entry `jet` (the seed's look), Turbo and gray.

use std::fmt;
use std::str::FromStr;

use image::Rgb;

/// Number of entries of every table, as in MATLAB's default `colormap jet`.
pub const ENTRIES: usize = 256;

/// Which colour table paints a heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// MATLAB's `jet(256)`: dark blue (low) through cyan, yellow to dark red (high).
    #[default]
    Jet,
    /// Google's Turbo: jet's layout with smoother, perceptually more even steps.
    Turbo,
    /// Black (low) to white (high).
    Gray,
}

impl Colormap {
    pub const ALL: [Colormap; 3] = [Colormap::Jet, Colormap::Turbo, Colormap::Gray];

    pub fn name(self) -> &'static str {
        match self {
            Colormap::Jet => "jet",
            Colormap::Turbo => "turbo",
            Colormap::Gray => "gray",
        }
    }

    /// Entry `index` (0..256) as RGB fractions in [0, 1].
    pub fn rgb(self, index: usize) -> [f32; 3] {
        let index = index.min(ENTRIES - 1);
        match self {
            Colormap::Jet => jet(index),
            Colormap::Turbo => turbo(index as f32 / (ENTRIES - 1) as f32),
            Colormap::Gray => [index as f32 / (ENTRIES - 1) as f32; 3],
        }
    }

    /// The whole table in 8-bit colour, computed once per picture.
    pub fn table(self) -> [Rgb<u8>; ENTRIES] {
        std::array::from_fn(|i| {
            Rgb(self
                .rgb(i)
                .map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8))
        })
    }
}

/// The table entry MATLAB's scaled colour mapping (`imagesc`) picks for `t` in [0, 1]:
/// equal-width bins, `t = 1` in the last one; out-of-range or NaN values land in the end bins.
pub fn entry_for(t: f32) -> usize {
    if t.is_nan() {
        return 0;
    }
    ((t * ENTRIES as f32).floor().max(0.0) as usize).min(ENTRIES - 1)
}

/// MATLAB's `jet(256)`: with n = 64, the ramp u = [1/n .. 1, 63 ones, 1 .. 1/n] (191 values) is
/// laid into the green column starting at row 33, into red 64 rows later and into blue 64 rows
/// earlier, each clipped to the table. `index` is 0-based.
fn jet(index: usize) -> [f32; 3] {
    const N: isize = (ENTRIES / 4) as isize;
    let ramp = |k: isize| -> f32 {
        // u(k), 1-based, zero outside 1..=3N-1.
        match k {
            k if !(1..3 * N).contains(&k) => 0.0,
            k if k <= N => k as f32 / N as f32,
            k if k < 2 * N => 1.0,
            k => (3 * N - k) as f32 / N as f32,
        }
    };
    let row = index as isize + 1; // MATLAB row
    let green_start = N / 2; // g = ceil(n/2) + (1:length(u)) for m divisible by 4
    let green = ramp(row - green_start);
    let red = ramp(row - green_start - N);
    let blue = ramp(row - green_start + N);
    [red, green, blue]
}

/// Turbo (Mikhailov, Google 2019) through its published degree-5 polynomial approximation
/// (coefficients of t^0..t^5 per channel), close to the reference table; `t` in [0, 1].
fn turbo(t: f32) -> [f32; 3] {
    const RED: [f32; 6] = [
        0.135_721_38,
        4.615_392_6,
        -42.660_32,
        132.131_08,
        -152.942_39,
        59.286_38,
    ];
    const GREEN: [f32; 6] = [
        0.091_402_61,
        2.194_188_4,
        4.842_966_6,
        -14.185_033,
        4.277_298_6,
        2.829_566,
    ];
    const BLUE: [f32; 6] = [
        0.106_673_3,
        12.641_946,
        -60.582_05,
        110.362_77,
        -89.903_11,
        27.348_25,
    ];
    let t = t.clamp(0.0, 1.0);
    let poly = |c: &[f32; 6]| {
        c.iter()
            .rev()
            .fold(0.0f32, |acc, &k| acc * t + k)
            .clamp(0.0, 1.0)
    };
    [poly(&RED), poly(&GREEN), poly(&BLUE)]
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Colormap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Colormap::ALL
            .into_iter()
            .find(|c| {
                c.name().eq_ignore_ascii_case(s)
                    || (s.eq_ignore_ascii_case("grey") && *c == Colormap::Gray)
            })
            .ok_or_else(|| {
                let names: Vec<_> = Colormap::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown colormap '{s}' (choose one of: {})",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_ends_are_dark_blue_and_dark_red() {
        assert_eq!(Colormap::Jet.rgb(0), [0.0, 0.0, 33.0 / 64.0]); // MATLAB prints 0.5156
        assert_eq!(Colormap::Jet.rgb(255), [0.5, 0.0, 0.0]);
    }

    #[test]
    fn jet_middle_and_knees_match_matlab() {
        // MATLAB rows 128 and 129 (1-based) of jet(256).
        assert_eq!(Colormap::Jet.rgb(127), [0.5, 1.0, 0.5]);
        assert_eq!(Colormap::Jet.rgb(128), [33.0 / 64.0, 1.0, 31.0 / 64.0]);
        // Row 32: blue reaches 1; row 33: green starts; row 96: pure cyan; row 160: pure yellow;
        // row 224: pure red, before the fall to dark red.
        assert_eq!(Colormap::Jet.rgb(31), [0.0, 0.0, 1.0]);
        assert_eq!(Colormap::Jet.rgb(32), [0.0, 1.0 / 64.0, 1.0]);
        assert_eq!(Colormap::Jet.rgb(95), [0.0, 1.0, 1.0]);
        assert_eq!(Colormap::Jet.rgb(159), [1.0, 1.0, 0.0]);
        assert_eq!(Colormap::Jet.rgb(223), [1.0, 0.0, 0.0]);
        assert_eq!(Colormap::Jet.rgb(222), [1.0, 1.0 / 64.0, 0.0]);
    }

    #[test]
    fn jet_steps_are_piecewise_linear_by_one_64th() {
        for i in 1..ENTRIES {
            let (a, b) = (Colormap::Jet.rgb(i - 1), Colormap::Jet.rgb(i));
            for c in 0..3 {
                let step = (b[c] - a[c]).abs();
                assert!(
                    step == 0.0 || (step - 1.0 / 64.0).abs() < 1e-6,
                    "entry {i} channel {c}: {a:?} -> {b:?}"
                );
            }
        }
    }

    #[test]
    fn turbo_runs_dark_blue_to_dark_red_and_gray_is_a_ramp() {
        let table = Colormap::Turbo.table();
        let (first, blue, last) = (table[0].0, table[40].0, table[255].0);
        assert!(
            first.iter().all(|&c| c < 64),
            "Turbo starts almost black: {first:?}"
        );
        assert!(
            blue[2] > 200 && blue[2] > blue[0] && blue[2] > blue[1],
            "{blue:?}"
        );
        assert!(
            last[0] > 100 && last[0] > 4 * last[1] && last[0] > 4 * last[2],
            "{last:?}"
        );
        let middle = table[128].0; // Turbo's middle is a bright green
        assert!(middle[1] > 200 && middle[1] > middle[2], "{middle:?}");
        let gray = Colormap::Gray.table();
        assert_eq!(gray[0], Rgb([0, 0, 0]));
        assert_eq!(gray[255], Rgb([255, 255, 255]));
        assert_eq!(gray[100], Rgb([100, 100, 100]));
    }

    #[test]
    fn values_map_to_entries_as_imagesc_does() {
        assert_eq!(entry_for(0.0), 0);
        assert_eq!(entry_for(1.0 / 256.0 - 1e-6), 0);
        assert_eq!(entry_for(0.5), 128);
        assert_eq!(entry_for(1.0), 255);
        assert_eq!(entry_for(-0.3), 0);
        assert_eq!(entry_for(7.0), 255);
        assert_eq!(entry_for(f32::NAN), 0);
    }

    #[test]
    fn names_parse_and_unknown_ones_list_the_choices() {
        assert_eq!("JET".parse::<Colormap>().unwrap(), Colormap::Jet);
        assert_eq!("grey".parse::<Colormap>().unwrap(), Colormap::Gray);
        let err = "viridis".parse::<Colormap>().unwrap_err();
        assert!(
            err.contains("viridis") && err.contains("jet, turbo, gray"),
            "{err}"
        );
    }
}
