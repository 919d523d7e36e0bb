use proptest::prelude::*;

use super::*;

fn header() -> impl Strategy<Value = Header> {
    ("[a-z-]{0,12}", prop::option::of(prop::collection::vec(any::<u8>(), 0..16)))
        .prop_map(|(key, v)| Header { key, value: v.map(Bytes::from) })
}

fn record() -> impl Strategy<Value = ProduceRecord> {
    (
        prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..512)),
        prop::collection::vec(header(), 0..3),
        prop::option::of(0i64..4_000_000_000_000),
    )
        .prop_map(|(k, v, headers, ts)| ProduceRecord {
            key: k.map(Bytes::from),
            value: v.map(Bytes::from),
            headers,
            timestamp: ts,
            partition: None,
        })
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #[test]
    fn batches_round_trip(records in prop::collection::vec(record(), 1..40), c in codec(), base in 0u64..1 << 50) {
        let mut out = Vec::new();
        let n = encode_batch(&records, c, 1_700_000_000_000, &mut Vec::new(), &mut out);
        prop_assert_eq!(n as usize, records.len());
        set_base_offset(&mut out, base);
        let decoded = decode_all(&out, "t", 2).unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (r, d)) in records.iter().zip(&decoded).enumerate() {
            prop_assert_eq!(d.offset, base + i as u64);
            prop_assert_eq!(d.partition, 2);
            prop_assert_eq!(&d.key, &r.key);
            prop_assert_eq!(&d.value, &r.value);
            prop_assert_eq!(&d.headers, &r.headers);
            prop_assert_eq!(d.timestamp, r.timestamp.unwrap_or(1_700_000_000_000));
        }
        let h = BatchHeader::parse(&out).unwrap();
        prop_assert_eq!(h.total_len(), out.len());
        prop_assert_eq!(h.max_timestamp, decoded.iter().map(|r| r.timestamp).max().unwrap());
    }

    #[test]
    fn any_flipped_bit_after_the_offset_is_detected(records in prop::collection::vec(record(), 1..8), c in codec(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut out = Vec::new();
        encode_batch(&records, c, 0, &mut Vec::new(), &mut out);
        let i = 8 + at.index(out.len() - 8);
        out[i] ^= 1 << bit;
        // Either the header is refused outright or the checksum catches it.
        let ok = BatchHeader::parse(&out).and_then(|h| verify(&h, &out)).is_ok();
        prop_assert!(!ok, "flip at byte {} went unnoticed", i);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_all(&bytes, "t", 0);
    }
}

#[test]
fn records_before_min_offset_are_skipped() {
    let records: Vec<_> = (0..5).map(|i| ProduceRecord::new(None::<Bytes>, format!("v{i}"))).collect();
    let mut out = Vec::new();
    encode_batch(&records, Compression::Lz4, 0, &mut Vec::new(), &mut out);
    set_base_offset(&mut out, 10);
    let h = BatchHeader::parse(&out).unwrap();
    let mut got = Vec::new();
    decode_records(&h, Bytes::from(out), &"t".into(), 0, 13, &mut got).unwrap();
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), [13, 14]);
    assert_eq!(got[0].value_str(), Some("v3"));
}

#[test]
fn a_short_buffer_is_incomplete_not_corrupt() {
    let mut out = Vec::new();
    encode_batch(&[ProduceRecord::new(Some("k"), "v")], Compression::None, 0, &mut Vec::new(), &mut out);
    let h = BatchHeader::parse(&out).unwrap();
    assert!(matches!(verify(&h, &out[..out.len() - 1]), Err(DecodeError::Incomplete { .. })));
    assert!(matches!(BatchHeader::parse(&out[..10]), Err(DecodeError::Incomplete { .. })));
}
