//! Metric history for the training charts, kept apart from the widgets that draw it: the raw value
//! of every mini-batch, an exponentially smoothed curve (as in MATLAB's training-progress plot) and
//! the validation points. Long runs are downsampled in place so memory and drawing time stay bounded
//! however many iterations a run has.

use std::collections::VecDeque;

/// Weight of the past in the smoothed curve: about the last 5 to 10 mini-batches count.
const SMOOTHING: f64 = 0.8;
/// Most points kept per series; when full, neighbours are merged in pairs.
const CAPACITY: usize = 4096;
/// Raw values kept unmerged for the "recent trend" sparklines.
const RECENT: usize = 120;

/// (iteration, value) pairs as a chart draws them.
pub type Curve = Vec<(f64, f64)>;

/// One retained point: the mean of `count` consecutive mini-batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub iteration: f64,
    pub raw: f64,
    pub smoothed: f64,
}

/// One metric (loss or accuracy) over a run.
#[derive(Debug, Clone)]
pub struct Series {
    points: Vec<Point>,
    /// Mini-batches merged into each point; doubles at each downsampling.
    stride: usize,
    /// The bucket being filled until it holds `stride` mini-batches.
    bucket: Option<(Point, usize)>,
    ema: Option<f64>,
    recent: VecDeque<f64>,
    validation: Vec<(f64, f64)>,
    capacity: usize,
}

impl Default for Series {
    fn default() -> Self {
        Series::with_capacity(CAPACITY)
    }
}

impl Series {
    fn with_capacity(capacity: usize) -> Series {
        Series {
            points: Vec::new(),
            stride: 1,
            bucket: None,
            ema: None,
            recent: VecDeque::with_capacity(RECENT),
            validation: Vec::new(),
            capacity: capacity.max(2),
        }
    }

    /// Adds the value of one mini-batch. Iterations may skip (a slow consumer drops some events).
    pub fn push(&mut self, iteration: usize, value: f64) {
        if !value.is_finite() {
            return;
        }
        let smoothed = match self.ema {
            Some(previous) => SMOOTHING * previous + (1.0 - SMOOTHING) * value,
            None => value,
        };
        self.ema = Some(smoothed);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(value);

        let point = Point {
            iteration: iteration as f64,
            raw: value,
            smoothed,
        };
        let (sum, count) = match self.bucket.take() {
            Some((sum, count)) => (
                Point {
                    iteration: sum.iteration + point.iteration,
                    raw: sum.raw + point.raw,
                    smoothed: sum.smoothed + point.smoothed,
                },
                count + 1,
            ),
            None => (point, 1),
        };
        if count < self.stride {
            self.bucket = Some((sum, count));
            return;
        }
        let n = count as f64;
        self.points.push(Point {
            iteration: sum.iteration / n,
            raw: sum.raw / n,
            smoothed: sum.smoothed / n,
        });
        if self.points.len() >= self.capacity {
            self.halve();
        }
    }

    /// Merges neighbouring points in pairs: half the points, each standing for twice the batches.
    fn halve(&mut self) {
        let merged = self
            .points
            .chunks(2)
            .map(|pair| {
                let n = pair.len() as f64;
                Point {
                    iteration: pair.iter().map(|p| p.iteration).sum::<f64>() / n,
                    raw: pair.iter().map(|p| p.raw).sum::<f64>() / n,
                    smoothed: pair.iter().map(|p| p.smoothed).sum::<f64>() / n,
                }
            })
            .collect();
        self.points = merged;
        self.stride *= 2;
    }

    pub fn push_validation(&mut self, iteration: usize, value: f64) {
        if value.is_finite() {
            self.validation.push((iteration as f64, value));
        }
    }

    #[cfg(test)]
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// The raw values of the last mini-batches, oldest first, never merged.
    pub fn recent(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.recent.iter().copied()
    }

    pub fn validation(&self) -> &[(f64, f64)] {
        &self.validation
    }

    pub fn last_smoothed(&self) -> Option<f64> {
        self.ema
    }

    /// (iteration, raw) and (iteration, smoothed) pairs for a chart at most `max_points` wide: the
    /// stored points are averaged further in equal buckets so a chart never draws more than it shows.
    pub fn chart_data(&self, max_points: usize) -> (Curve, Curve) {
        let max_points = max_points.max(1);
        let per_bucket = self.points.len().div_ceil(max_points).max(1);
        self.points
            .chunks(per_bucket)
            .map(|chunk| {
                let n = chunk.len() as f64;
                let x = chunk.iter().map(|p| p.iteration).sum::<f64>() / n;
                let raw = chunk.iter().map(|p| p.raw).sum::<f64>() / n;
                let smoothed = chunk.iter().map(|p| p.smoothed).sum::<f64>() / n;
                ((x, raw), (x, smoothed))
            })
            .unzip()
    }

    /// Largest value among the retained raw points and validation points.
    pub fn max_value(&self) -> Option<f64> {
        self.points
            .iter()
            .map(|p| p.raw)
            .chain(self.validation.iter().map(|v| v.1))
            .fold(None, |max, v| Some(max.map_or(v, |m: f64| m.max(v))))
    }
}

/// Loss and accuracy (in percent, as MATLAB plots it) of one run.
#[derive(Debug, Clone, Default)]
pub struct MetricHistory {
    pub loss: Series,
    pub accuracy_percent: Series,
}

impl MetricHistory {
    pub fn record_iteration(&mut self, iteration: usize, loss: f32, accuracy: f32) {
        self.loss.push(iteration, f64::from(loss));
        self.accuracy_percent
            .push(iteration, 100.0 * f64::from(accuracy));
    }

    pub fn record_validation(&mut self, iteration: usize, loss: f32, accuracy: f32) {
        self.loss.push_validation(iteration, f64::from(loss));
        self.accuracy_percent
            .push_validation(iteration, 100.0 * f64::from(accuracy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_follows_the_raw_values_with_lag() {
        let mut series = Series::default();
        series.push(1, 1.0);
        series.push(2, 0.0);
        let points = series.points();
        assert_eq!(points[0].smoothed, 1.0, "the first value starts the curve");
        assert!((points[1].smoothed - SMOOTHING).abs() < 1e-12);
        assert_eq!(points[1].raw, 0.0);
    }

    #[test]
    fn long_runs_are_downsampled_to_bounded_means() {
        let mut series = Series::with_capacity(8);
        for i in 1..=1000 {
            series.push(i, i as f64);
        }
        assert!(
            series.points().len() < 8,
            "{} points kept",
            series.points().len()
        );
        // Means of consecutive batches: increasing, spanning the run, averaging preserved.
        let xs: Vec<f64> = series.points().iter().map(|p| p.iteration).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]));
        for p in series.points() {
            assert!(
                (p.iteration - p.raw).abs() < 1e-9,
                "raw mean equals iteration mean here"
            );
        }
        assert!(xs[0] < 100.0 && *xs.last().unwrap() > 700.0, "{xs:?}");
        assert_eq!(series.recent().len(), RECENT);
        assert_eq!(series.recent().last(), Some(1000.0));
    }

    #[test]
    fn chart_data_is_capped_and_validation_kept_apart() {
        let mut history = MetricHistory::default();
        for i in 1..=300 {
            history.record_iteration(i, 1.0 / i as f32, 0.5);
        }
        history.record_validation(30, 0.4, 0.9);
        let (raw, smooth) = history.loss.chart_data(50);
        assert!(raw.len() <= 50 && raw.len() == smooth.len());
        let validation = history.accuracy_percent.validation();
        assert_eq!(validation.len(), 1);
        assert_eq!(validation[0].0, 30.0);
        assert!((validation[0].1 - 90.0).abs() < 1e-4, "{validation:?}");
        assert_eq!(history.accuracy_percent.points()[0].raw, 50.0);
        assert_eq!(history.loss.max_value(), Some(1.0));
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut series = Series::default();
        series.push(1, f64::NAN);
        series.push(2, 2.0);
        assert_eq!(series.points().len(), 1);
        assert_eq!(series.last_smoothed(), Some(2.0));
    }
}
