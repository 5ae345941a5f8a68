//! Spreading independent simulations over threads, keeping input order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` applied to every item, in input order, on `threads` scoped threads (0 = every core).
/// Items are handed out one at a time, so threads whose items finish early take more (the
/// cost of an item varies: a simulation may give up early).
/// A panic in a worker is a bug: it is re-raised here rather than losing results.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    parallel_until(items, threads, f, |_| false)
}

/// `f` applied to `items` in input order on `threads` scoped threads (0 = every core) until
/// the first result that `found` accepts: the results of every item up to and including that
/// one, in order (of every item when none is accepted). Items after it may have been started
/// by other threads meanwhile; their results are dropped, so what returns never depends on the
/// threads' timing.
pub fn parallel_until<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
    found: impl Fn(&R) -> bool + Sync,
) -> Vec<R> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let next = AtomicUsize::new(0);
    // The lowest index found so far; every index below it has been handed out, and a thread
    // that takes an index finishes it, so the prefix up to it is complete at the end.
    let first_found = AtomicUsize::new(usize::MAX);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= items.len() || i > first_found.load(Ordering::SeqCst) {
                break;
            }
            let r = f(&items[i]);
            if found(&r) {
                first_found.fetch_min(i, Ordering::SeqCst);
            }
            *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads.clamp(1, items.len().max(1)))
            .map(|_| scope.spawn(work))
            .collect();
        work();
        for w in workers {
            if let Err(panic) = w.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let end = first_found.into_inner().saturating_add(1);
    results
        .into_iter()
        .take(end)
        .map_while(|r| r.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{parallel_map, parallel_until};

    #[test]
    fn keeps_input_order_whatever_the_thread_count() {
        let items: Vec<u32> = (0..101).collect();
        for threads in [0, 1, 2, 7, 500] {
            assert_eq!(
                parallel_map(&items, threads, |x| x * 2),
                items.iter().map(|x| x * 2).collect::<Vec<_>>()
            );
        }
        assert!(parallel_map(&Vec::<u32>::new(), 2, |x| *x).is_empty());
    }

    #[test]
    fn until_returns_the_prefix_up_to_the_first_found_whatever_the_thread_count() {
        let items: Vec<u32> = (0..200).collect();
        for threads in [0, 1, 2, 3, 16] {
            let prefix = parallel_until(&items, threads, |x| x * 3, |r| *r % 7 == 6 && *r > 100);
            // 111 = 37 * 3 is the first multiple of 3 above 100 that leaves 6 modulo 7.
            assert_eq!(
                prefix,
                (0..=37).map(|x| x * 3).collect::<Vec<_>>(),
                "{threads} threads"
            );
            let none = parallel_until(&items, threads, |x| *x, |_| false);
            assert_eq!(none, items, "{threads} threads");
        }
    }
}
