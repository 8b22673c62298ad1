//! The tensor executor's workspace: arrays a step is done with (a `let`'s
//! value, a product, a temporary) are kept per thread and handed to the next
//! array of at most their size, so a step after the first takes its
//! temporaries from memory already mapped (a fresh array of a 1024 x 4096
//! matrix faults in 4096 pages) instead of from the allocator.

use std::any::Any;
use std::cell::RefCell;

/// How many arrays a thread keeps.
const KEPT: usize = 6;

/// Arrays shorter than this go back to the allocator (its own free lists
/// serve them well).
const MIN_KEPT: usize = 1 << 12;

thread_local! {
    static POOL: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// An array of `n` numbers whose contents are unspecified (the caller writes
/// every one): the smallest kept array that holds `n`, else a new one.
pub(crate) fn take<T: Copy + Default + 'static>(n: usize) -> Vec<T> {
    let kept = POOL.with(|p| {
        let mut p = p.borrow_mut();
        let best = p
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                b.downcast_ref::<Vec<T>>()
                    .filter(|v| v.capacity() >= n)
                    .map(|v| (v.capacity(), i))
            })
            .min()
            .map(|(_, i)| i);
        best.and_then(|i| p.swap_remove(i).downcast::<Vec<T>>().ok())
    });
    match kept {
        Some(v) => {
            let mut v = *v;
            // Only numbers past the kept length are written here.
            if v.len() >= n {
                v.truncate(n);
            } else {
                v.resize(n, T::default());
            }
            v
        }
        None => vec![T::default(); n],
    }
}

/// Keeps `v` for a later [`take`] on this thread (or frees it when the
/// thread keeps enough already, or it is small).
pub(crate) fn give<T: 'static>(v: Vec<T>) {
    if v.capacity() < MIN_KEPT {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < KEPT {
            p.push(Box::new(v));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_array_is_taken_again_for_a_size_it_holds() {
        let v: Vec<f32> = take(MIN_KEPT * 2);
        let ptr = v.as_ptr();
        give(v);
        let w: Vec<f32> = take(MIN_KEPT + 1);
        assert_eq!(w.len(), MIN_KEPT + 1);
        assert_eq!(w.as_ptr(), ptr, "the kept array was not reused");
        // Another type does not take it.
        give(w);
        let d: Vec<f64> = take(16);
        assert_eq!(d.len(), 16);
        let again: Vec<f32> = take(MIN_KEPT * 2);
        assert_eq!(again.as_ptr(), ptr);
    }
}
