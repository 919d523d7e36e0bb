//! The batch decoder must never panic on arbitrary bytes: whatever a damaged segment holds, the
//! log answers with an error, not a crash, and never returns records from a batch whose checksum
//! does not match.
#![no_main]

use eventline_log::codec::{BatchHeader, decode_all, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BatchHeader::parse(data) {
        let _ = h.compression();
        let _ = verify(&h, data);
    }
    if let Ok(records) = decode_all(data, "fuzz", 0) {
        // Whatever decoded passed its checksum: offsets are dense from the first batch's base.
        for pair in records.windows(2) {
            assert!(pair[1].offset > pair[0].offset || pair[1].offset == 0);
        }
    }
});
