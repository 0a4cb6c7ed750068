//! State of the test-image browser: which items are shown (filter), in what order, which one is
//! selected, and how pictures are drawn. Pure logic over the list of test items; the view draws it.

use crate::app::gallery::TestItem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As the test set lists them.
    File,
    /// Least confident prediction first: where the model hesitates.
    Confidence,
    /// Highest loss first: the worst mistakes.
    Loss,
}

impl Order {
    fn next(self) -> Order {
        match self {
            Order::File => Order::Confidence,
            Order::Confidence => Order::Loss,
            Order::Loss => Order::File,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Order::File => "file order",
            Order::Confidence => "least sure first",
            Order::Loss => "highest loss first",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BrowserState {
    pub truth_filter: Option<usize>,
    pub predicted_filter: Option<usize>,
    pub order: Order,
    pub grid: bool,
    /// Columns and rows of the grid as last drawn, for paging.
    pub cells: (usize, usize),
    /// Item indices shown, filtered and sorted.
    visible: Vec<usize>,
    /// Position in `visible`.
    cursor: usize,
}

impl Default for BrowserState {
    fn default() -> Self {
        BrowserState {
            truth_filter: None,
            predicted_filter: None,
            order: Order::File,
            grid: false,
            cells: (1, 1),
            visible: Vec::new(),
            cursor: 0,
        }
    }
}

impl BrowserState {
    /// Recomputes the visible list after the items, the filter or the order changed, keeping the
    /// selected item selected when it is still visible.
    pub fn rebuild(&mut self, items: &[TestItem]) {
        let selected = self.selected();
        let mut visible: Vec<usize> = (0..items.len())
            .filter(|&i| self.truth_filter.is_none_or(|c| items[i].truth == c))
            .filter(|&i| {
                self.predicted_filter
                    .is_none_or(|c| items[i].predicted == c)
            })
            .collect();
        match self.order {
            Order::File => {}
            Order::Confidence => {
                visible.sort_by(|&a, &b| items[a].score.total_cmp(&items[b].score))
            }
            Order::Loss => visible.sort_by(|&a, &b| items[b].loss.total_cmp(&items[a].loss)),
        }
        self.cursor = selected
            .and_then(|s| visible.iter().position(|&i| i == s))
            .unwrap_or(0);
        self.visible = visible;
    }

    pub fn visible(&self) -> &[usize] {
        &self.visible
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The selected item index, if any item is visible.
    pub fn selected(&self) -> Option<usize> {
        self.visible.get(self.cursor).copied()
    }

    /// Moves by `delta` positions, stopping at either end.
    pub fn step(&mut self, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        let last = self.visible.len() - 1;
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
    }

    pub fn first(&mut self) {
        self.cursor = 0;
    }

    pub fn last(&mut self) {
        self.cursor = self.visible.len().saturating_sub(1);
    }

    /// Selects the next misclassified item after the current one, wrapping around; false when the
    /// visible list has none.
    pub fn next_misclassified(&mut self, items: &[TestItem]) -> bool {
        let n = self.visible.len();
        let found = (1..=n)
            .map(|offset| (self.cursor + offset) % n)
            .find(|&pos| !items[self.visible[pos]].is_correct());
        if let Some(pos) = found {
            self.cursor = pos;
        }
        found.is_some()
    }

    /// All classes, then each class in turn.
    pub fn cycle_truth_filter(&mut self, classes: usize, items: &[TestItem]) {
        self.truth_filter = next_class(self.truth_filter, classes);
        self.rebuild(items);
    }

    pub fn cycle_predicted_filter(&mut self, classes: usize, items: &[TestItem]) {
        self.predicted_filter = next_class(self.predicted_filter, classes);
        self.rebuild(items);
    }

    pub fn cycle_order(&mut self, items: &[TestItem]) {
        self.order = self.order.next();
        self.rebuild(items);
    }

    /// The page of `page_size` visible positions that holds the cursor, for the grid.
    pub fn page(&self, page_size: usize) -> std::ops::Range<usize> {
        let page_size = page_size.max(1);
        let start = self.cursor / page_size * page_size;
        start..(start + page_size).min(self.visible.len())
    }
}

/// No filter, then each class in turn.
fn next_class(current: Option<usize>, classes: usize) -> Option<usize> {
    match current {
        None if classes > 0 => Some(0),
        Some(c) if c + 1 < classes => Some(c + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fake::FakeGallery;

    fn items() -> Vec<TestItem> {
        FakeGallery::new(12).items().to_vec()
    }

    #[test]
    fn paging_stops_at_both_ends() {
        let items = items();
        let mut b = BrowserState::default();
        b.rebuild(&items);
        assert_eq!(b.selected(), Some(0));
        b.step(-1);
        assert_eq!(b.selected(), Some(0));
        b.step(5);
        assert_eq!(b.selected(), Some(5));
        b.step(100);
        assert_eq!(b.selected(), Some(11));
        b.first();
        assert_eq!(b.selected(), Some(0));
        b.last();
        assert_eq!(b.page(5), 10..12);
    }

    #[test]
    fn jump_to_misclassified_wraps_and_reports_none() {
        let items = items();
        let mut b = BrowserState::default();
        b.rebuild(&items);
        assert!(b.next_misclassified(&items));
        assert_eq!(b.selected(), Some(3));
        assert!(b.next_misclassified(&items));
        assert_eq!(b.selected(), Some(8));
        assert!(b.next_misclassified(&items));
        assert_eq!(b.selected(), Some(3), "wraps around");
        // Only correct items visible: predicted Negative and truly Negative.
        b.truth_filter = Some(0);
        b.predicted_filter = Some(0);
        b.rebuild(&items);
        let before = b.selected();
        assert!(!b.next_misclassified(&items));
        assert_eq!(b.selected(), before);
    }

    #[test]
    fn filters_cycle_through_classes_and_keep_the_selection() {
        let items = items();
        let mut b = BrowserState::default();
        b.rebuild(&items);
        b.step(4); // item 4, a Negative
        b.cycle_truth_filter(2, &items);
        assert_eq!(b.truth_filter, Some(0));
        assert!(b.visible().iter().all(|&i| items[i].truth == 0));
        assert_eq!(b.selected(), Some(4), "still visible, still selected");
        b.cycle_truth_filter(2, &items);
        assert_eq!(b.truth_filter, Some(1));
        assert!(b.visible().iter().all(|&i| items[i].truth == 1));
        b.cycle_truth_filter(2, &items);
        assert_eq!(b.truth_filter, None);
        assert_eq!(b.visible().len(), 12);

        // Predicted Positive among true Negatives: the one false positive, item 8.
        b.truth_filter = Some(0);
        b.cycle_predicted_filter(2, &items);
        b.cycle_predicted_filter(2, &items);
        assert_eq!(b.predicted_filter, Some(1));
        assert_eq!(b.visible(), &[8]);
    }

    #[test]
    fn orders_sort_by_confidence_and_by_loss() {
        let items = items();
        let mut b = BrowserState::default();
        b.rebuild(&items);
        b.cycle_order(&items);
        assert_eq!(b.order, Order::Confidence);
        let scores: Vec<f32> = b.visible().iter().map(|&i| items[i].score).collect();
        assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");
        b.cycle_order(&items);
        assert_eq!(b.order, Order::Loss);
        let losses: Vec<f32> = b.visible().iter().map(|&i| items[i].loss).collect();
        assert!(losses.windows(2).all(|w| w[0] >= w[1]), "{losses:?}");
        assert!(
            !items[b.visible()[0]].is_correct(),
            "the worst loss is a mistake"
        );
        b.first();
        assert_eq!(b.selected(), Some(b.visible()[0]));
    }
}
