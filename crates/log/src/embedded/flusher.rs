//! Group commit: a few threads fsync the partitions that have unsynced writes. Producers with
//! acks=all wait for the partition's durable offset to pass their records; all the writes that
//! arrived while one fsync ran share the next one. Several workers let the fsyncs of different
//! partitions overlap (the filesystem can then commit them in one journal transaction) instead of
//! queueing behind each other.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::partition::Partition;

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

    /// Asks for `p` to be fsynced soon.
    pub fn request(&self, p: &Arc<Partition>) {
        if p.flush_queued.swap(true, Ordering::AcqRel) {
            return;
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
        // Clear the flag first: a write after this point queues the partition again.
        partition.flush_queued.store(false, Ordering::Release);
        partition.flush();
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}
