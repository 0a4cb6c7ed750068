//! Recycled activation buffers.
//!
//! A training step at batch 32 touches about a gigabyte of activations. Fresh allocations of that
//! size come from the operating system as untouched pages, and faulting them in costs about as much
//! as a full pass over the memory, every step. The engine therefore takes its buffers from a pool
//! that hands back buffers of exactly the requested length (the same shapes recur every step) and
//! forgets buffers that have not been asked for during the last few passes, so that a change of
//! batch size does not pin the old working set forever. A request may also take a free buffer a
//! little longer than it needs (up to [`SLACK`]): a whole-photo scan runs the network on tiles
//! of slightly different shapes, and without that each tile would fault in a fresh working set.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

/// Passes a buffer may sit unused in the pool before it is freed.
const KEEP_PASSES: u64 = 2;
/// A free buffer serves a request of `len` values when it holds at most `len + len / SLACK`: close
/// enough that no big buffer is spent on a small request while a big one goes unserved.
const SLACK: usize = 4;

/// A pool of `f32` buffers shared by one model and the operations it records.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    pass: u64,
    /// Free buffers with the pass in which they were last handed out.
    free: Vec<(u64, Vec<f32>)>,
}

impl BufferPool {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state stays consistent even if a holder panicked: every update is a single push/pop.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the start of a forward pass and frees buffers unused for [`KEEP_PASSES`] passes.
    pub fn begin_pass(&self) {
        let mut state = self.state();
        state.pass += 1;
        let pass = state.pass;
        state.free.retain(|(used, _)| used + KEEP_PASSES >= pass);
    }

    /// A buffer of `len` values with unspecified (but initialised) contents: the smallest free
    /// one that can hold them without wasting more than a [`SLACK`]th, else a new one.
    pub fn take(self: &Arc<Self>, len: usize) -> Buffer {
        let reused = {
            let mut state = self.state();
            let fits = |b: &Vec<f32>| (len..=len + len / SLACK).contains(&b.capacity());
            let best = (0..state.free.len())
                .rev()
                .filter(|&i| fits(&state.free[i].1))
                .min_by_key(|&i| state.free[i].1.capacity());
            if best.is_none() {
                // A miss means larger shapes than before: the shorter free buffers go now rather
                // than after KEEP_PASSES, so that two working sets are never held at once.
                state.free.retain(|(_, b)| b.capacity() > len);
            }
            best.map(|i| state.free.swap_remove(i).1)
        };
        let data = match reused {
            Some(mut data) => {
                // Within the capacity: no allocation, and only pages already touched.
                data.resize(len, 0.0);
                data
            }
            None => vec![0.0; len],
        };
        Buffer {
            data,
            pool: Some(self.clone()),
        }
    }

    fn give_back(&self, data: Vec<f32>) {
        if data.is_empty() {
            return;
        }
        let mut state = self.state();
        let pass = state.pass;
        state.free.push((pass, data));
    }

    #[cfg(test)]
    fn free_count(&self) -> usize {
        self.state().free.len()
    }
}

/// A buffer that returns to its pool when dropped.
#[derive(Debug)]
pub(crate) struct Buffer {
    data: Vec<f32>,
    pool: Option<Arc<BufferPool>>,
}

impl Deref for Buffer {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.data
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(std::mem::take(&mut self.data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_by_length_and_expire() {
        let pool = BufferPool::new();
        pool.begin_pass();
        let mut a = pool.take(8);
        a[3] = 7.0;
        let ptr = a.as_ptr();
        drop(a);
        let b = pool.take(8);
        assert_eq!(b.as_ptr(), ptr, "same-length buffer was not reused");
        assert_eq!(b[3], 7.0);
        let c = pool.take(8);
        assert_ne!(c.as_ptr(), ptr);
        drop((b, c));
        assert_eq!(pool.free_count(), 2);
        for _ in 0..=KEEP_PASSES {
            pool.begin_pass();
        }
        assert_eq!(pool.free_count(), 0, "unused buffers were kept");
    }

    #[test]
    fn a_slightly_longer_free_buffer_serves_a_request_and_a_much_longer_one_does_not() {
        let pool = BufferPool::new();
        pool.begin_pass();
        let (long, longer) = (pool.take(100), pool.take(110));
        let (long_ptr, longer_ptr) = (long.as_ptr(), longer.as_ptr());
        drop((longer, long));
        // The smallest that fits is taken, and it has the length asked for.
        let a = pool.take(96);
        assert_eq!((a.as_ptr(), a.len()), (long_ptr, 96));
        drop(a);
        let b = pool.take(104);
        assert_eq!((b.as_ptr(), b.len()), (longer_ptr, 104));
        // 100 values are more than a quarter over 40: a new buffer.
        let c = pool.take(40);
        assert!(c.as_ptr() != long_ptr && c.len() == 40);
        // Grown back within its capacity, a shortened buffer serves its first length again.
        drop(c);
        let d = pool.take(100);
        assert_eq!((d.as_ptr(), d.len()), (long_ptr, 100));
        // A request nothing fits drops the shorter free buffers at once.
        drop((b, d));
        assert_eq!(pool.free_count(), 3); // capacities 40, 100 and 110
        let e = pool.take(200);
        assert_eq!(pool.free_count(), 0);
        drop(e);
    }
}
