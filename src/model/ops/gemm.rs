//! Matrix products on plain slices, through the `gemm` crate that candle itself uses on the CPU.
//!
//! candle's `matmul` always allocates its result; the engine instead writes products straight into
//! column blocks of recycled buffers and accumulates weight gradients in place, which only the raw
//! routine allows. Products run single-threaded: the engine parallelises over column blocks.

use std::marker::PhantomData;
use std::ops::Range;

/// A read-only matrix view: element (i, j) lives at `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A dense row-major `rows x cols` matrix at the start of `data`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::columns(data, rows, cols, 0..cols)
    }

    /// Columns `range` of a dense row-major `rows x n` matrix.
    pub fn columns(data: &'a [f32], rows: usize, n: usize, range: Range<usize>) -> Self {
        assert!(range.end <= n, "columns {range:?} of a matrix with {n}");
        let m = Self {
            data: &data[range.start.min(data.len())..],
            rows,
            cols: range.len(),
            row_stride: n,
            col_stride: 1,
        };
        m.check();
        m
    }

    /// Row `r` of a view with unit column stride.
    pub fn row(&self, r: usize) -> &'a [f32] {
        assert!(r < self.rows && self.col_stride == 1, "row {r} of {self:?}");
        &self.data[r * self.row_stride..r * self.row_stride + self.cols]
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(
                last < self.data.len(),
                "matrix view {self:?} runs past its data"
            );
        }
    }
}

/// A writable `rows x cols` matrix with row stride `row_stride` (column stride 1).
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    row_stride: usize,
    _data: PhantomData<&'a mut [f32]>,
}

impl<'a> MatMut<'a> {
    /// A dense row-major `rows x cols` matrix at the start of `data`.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        assert!(
            rows * cols <= data.len(),
            "{rows}x{cols} matrix in {} values",
            data.len()
        );
        Self {
            ptr: data.as_mut_ptr(),
            rows,
            cols,
            row_stride: cols,
            _data: PhantomData,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `r` as a slice.
    pub fn row(&mut self, r: usize) -> &mut [f32] {
        assert!(r < self.rows);
        // SAFETY: row r spans `cols` values starting r * row_stride into memory this view
        // borrows exclusively (checked at construction); rows never overlap (row_stride >= cols).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r * self.row_stride), self.cols) }
    }

    /// Splits the rows at `at` into two views.
    pub fn split_rows(self, at: usize) -> (MatMut<'a>, MatMut<'a>) {
        assert!(at <= self.rows);
        let top = MatMut { rows: at, ..self };
        // SAFETY: `at <= rows`, so the offset stays inside (or one past) the borrowed block.
        let ptr = unsafe { self.ptr.add(at * self.row_stride) };
        let bottom = MatMut {
            ptr,
            rows: self.rows - at,
            ..self
        };
        (top, bottom)
    }
}

/// A dense row-major `rows x n` matrix that parallel tasks write in disjoint column ranges (a
/// channel-major activation written block of positions by block of positions).
pub(crate) struct SharedColumns<'a> {
    ptr: *mut f32,
    rows: usize,
    n: usize,
    _data: PhantomData<&'a mut [f32]>,
}

// SAFETY: the type only hands out views through `block`, whose contract forbids two live views
// of the same column; distinct columns are distinct memory, so tasks on other threads never race.
unsafe impl Send for SharedColumns<'_> {}
unsafe impl Sync for SharedColumns<'_> {}

impl<'a> SharedColumns<'a> {
    pub fn new(data: &'a mut [f32], rows: usize, n: usize) -> Self {
        assert!(
            rows * n <= data.len(),
            "{rows}x{n} matrix in {} values",
            data.len()
        );
        Self {
            ptr: data.as_mut_ptr(),
            rows,
            n,
            _data: PhantomData,
        }
    }

    /// Columns `range` as a writable view.
    ///
    /// # Safety
    /// No two views returned for overlapping column ranges may be alive at the same time.
    pub unsafe fn block(&self, range: Range<usize>) -> MatMut<'_> {
        assert!(
            range.start <= range.end && range.end <= self.n,
            "columns {range:?} of {}",
            self.n
        );
        MatMut {
            ptr: self.ptr.add(range.start),
            rows: self.rows,
            cols: range.len(),
            row_stride: self.n,
            _data: PhantomData,
        }
    }
}

/// `dst = a * b`, or `dst += a * b` when `accumulate`.
pub(crate) fn matmul(dst: &mut MatMut<'_>, a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions differ");
    assert_eq!((dst.rows, dst.cols), (m, n), "destination shape");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst.row(r).fill(0.0);
            }
        }
        return;
    }
    // SAFETY: `a` and `b` were bounds-checked above (`check` covers the last element each reads);
    // `dst` covers m x n values at its strides (checked when it was made) and is borrowed
    // exclusively, so it cannot alias the shared inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            1,
            dst.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_transposed_views_and_column_blocks_match_a_naive_loop() {
        let (m, k, n) = (5, 7, 6);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let expected = naive(&a, &b, m, k, n);
        let mut c = vec![1.0; m * n];
        matmul(
            &mut MatMut::new(&mut c, m, n),
            Mat::new(&a, m, k),
            Mat::new(&b, k, n),
            false,
        );
        for (x, y) in c.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5);
        }
        // Column blocks written separately, from (a^T)^T, accumulated onto the previous result.
        let mut at = vec![0.0; k * m];
        for i in 0..m {
            for p in 0..k {
                at[p * m + i] = a[i * k + p];
            }
        }
        let shared = SharedColumns::new(&mut c, m, n);
        for range in [0..2, 2..6] {
            // SAFETY: the two ranges are disjoint and used one after the other.
            let mut block = unsafe { shared.block(range.clone()) };
            matmul(
                &mut block,
                Mat::new(&at, k, m).t(),
                Mat::columns(&b, k, n, range),
                true,
            );
        }
        for (x, y) in c.iter().zip(&expected) {
            assert!((x - 2.0 * y).abs() < 1e-5);
        }
    }

    #[test]
    #[should_panic(expected = "runs past")]
    fn views_larger_than_their_data_are_refused() {
        let data = [0.0; 5];
        Mat::new(&data, 2, 3);
    }
}
