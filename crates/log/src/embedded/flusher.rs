//! Group commit: a few threads fsync the partitions that have unsynced writes. Producers with
//! acks=all wait for the partition's durable offset to pass their records; all the writes that
//! arrived while one fsync ran share the next one.
//!
//! A partition is fsynced by at most one worker at a time: writes that arrive during its fsync
//! mark it for another round, which the same worker runs as soon as the fsync returns. Two fsyncs
//! of one file in flight would each cost a device flush without making either write durable
//! sooner. Several workers let the fsyncs of different partitions overlap.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::partition::Partition;

/// A partition's place in the cycle, kept in `Partition::flush_state`.
mod state {
    /// Everything written is durable or being made durable by nobody: nothing to do.
    pub const IDLE: u8 = 0;
    /// In the queue, waiting for a worker.
    pub const QUEUED: u8 = 1;
    /// A worker is fsyncing it, and nothing was written since the fsync began.
    pub const FLUSHING: u8 = 2;
    /// A worker is fsyncing it, and more was written since: it runs another round.
    pub const AGAIN: u8 = 3;
}

#[derive(Debug, Default)]
struct Queue {
    dirty: Vec<Arc<Partition>>,
    stop: bool,
}

#[derive(Debug)]
pub struct Flusher {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Worker threads; fsync mostly waits on the device, so this is not bounded by cores.
const WORKERS: usize = 4;

impl Flusher {
    pub fn start() -> Self {
        let shared: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let threads = (0..WORKERS)
            .map(|i| {
                let worker = shared.clone();
                std::thread::Builder::new()
                    .name(format!("eventline-flush-{i}"))
                    .spawn(move || work(&worker))
                    .expect("spawn flusher thread")
            })
            .collect();
        Self { shared, threads: Mutex::new(threads) }
    }

    /// Asks for `p` to be fsynced soon: queues it, or tells the worker fsyncing it to go again.
    pub fn request(&self, p: &Arc<Partition>) {
        let flag = &p.flush_state;
        let mut current = flag.load(Ordering::Acquire);
        loop {
            let next = match current {
                state::IDLE => state::QUEUED,
                state::FLUSHING => state::AGAIN,
                _ => return, // already queued, or already marked for another round
            };
            match flag.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if next == state::QUEUED => break,
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).dirty.push(p.clone());
        cv.notify_one();
    }

    /// Flushes what is queued and stops the threads.
    pub fn stop(&self) {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            cv.notify_all();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// One worker: takes one dirty partition at a time until told to stop and the queue is empty.
fn work(shared: &(Mutex<Queue>, Condvar)) {
    let (lock, cv) = shared;
    loop {
        let partition = {
            let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(p) = q.dirty.pop() {
                    break p;
                }
                if q.stop {
                    return;
                }
                q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        flush_until_clean(&partition.flush_state, || partition.flush());
    }
}

/// Runs `flush` (state QUEUED on entry) until no write came in during the last round.
fn flush_until_clean(flag: &AtomicU8, mut flush: impl FnMut()) {
    // Mark the round before it starts: a write after this point asks for the next one.
    flag.store(state::FLUSHING, Ordering::Release);
    loop {
        flush();
        match flag.compare_exchange(state::FLUSHING, state::IDLE, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            // AGAIN: writes arrived during the fsync; they are covered by the next round.
            Err(_) => flag.store(state::FLUSHING, Ordering::Release),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_during_a_flush_gets_exactly_one_more_round() {
        let flag = AtomicU8::new(state::QUEUED);
        let mut rounds = 0;
        flush_until_clean(&flag, || {
            rounds += 1;
            if rounds == 1 {
                // Two writes land while the first fsync runs: one more round covers both.
                for _ in 0..2 {
                    let _ = flag.compare_exchange(state::FLUSHING, state::AGAIN, Ordering::AcqRel, Ordering::Acquire);
                }
            }
        });
        assert_eq!(rounds, 2);
        assert_eq!(flag.load(Ordering::Acquire), state::IDLE);
    }
}
