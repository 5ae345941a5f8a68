//! Spreading independent simulations over threads, keeping input order.

/// `f` applied to every item, in input order, on `threads` scoped threads (0 = every core).
/// A panic in a worker is a bug: it is re-raised here rather than losing results.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::parallel_map;

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
}
