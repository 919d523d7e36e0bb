-- PCI DSS 3.5: a card's full number (PAN) is not kept in clear. `pan_enc` holds it encrypted
-- (AES-256-GCM: 12-byte nonce || ciphertext+tag, key in <data-dir>/card-data.key or
-- EVENTLINE_CARD_DATA_KEY); `bin` (first six digits) and `last4` are what the card agent works
-- with; `pan` keeps its UNIQUE column but holds the card's token (`ctok_…`) once protected.
ALTER TABLE cards ADD COLUMN bin TEXT;
ALTER TABLE cards ADD COLUMN last4 TEXT;
ALTER TABLE cards ADD COLUMN pan_enc BLOB;
