//! Group commit: one thread fsyncs every partition that has unsynced writes. Producers with
//! acks=all wait for the partition's durable offset to pass their records; all the writes that
//! arrived while one fsync ran share the next one.

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
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    pub fn start() -> Self {
        let shared: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("eventline-flusher".into())
            .spawn(move || {
                let (lock, cv) = &*worker;
                loop {
                    let batch = {
                        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while q.dirty.is_empty() && !q.stop {
                            q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
                        }
                        if q.dirty.is_empty() && q.stop {
                            return;
                        }
                        std::mem::take(&mut q.dirty)
                    };
                    for p in batch {
                        // Clear the flag first: a write after this point queues the partition again.
                        p.flush_queued.store(false, Ordering::Release);
                        p.flush();
                    }
                }
            })
            .expect("spawn flusher thread");
        Self { shared, thread: Mutex::new(Some(thread)) }
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

    /// Flushes what is queued and stops the thread.
    pub fn stop(&self) {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}
