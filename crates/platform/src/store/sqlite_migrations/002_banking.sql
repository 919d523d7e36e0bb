-- The banking data the card, loan and wealth agents work on. Money is integer cents; rates are
-- basis points; prices and quantities (fractional shares) are REAL. Rows reference Users by
-- user_id without a foreign key: Users is the profile table of the contract and its deletion is
-- checked by the gateway (a customer holding products cannot be deleted).
CREATE TABLE IF NOT EXISTS accounts (
    account_id     TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('checking', 'savings', 'brokerage')),
    account_number TEXT NOT NULL,
    currency       TEXT NOT NULL DEFAULT 'USD',
    balance_cents  INTEGER NOT NULL,
    opened_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_user_id ON accounts (user_id);

CREATE TABLE IF NOT EXISTS cards (
    card_id            TEXT PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL,
    account_id         TEXT NOT NULL REFERENCES accounts (account_id),
    pan                TEXT NOT NULL UNIQUE,
    brand              TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('credit', 'debit')),
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'blocked')),
    credit_limit_cents INTEGER,
    expiry             TEXT NOT NULL,
    status_reason      TEXT,
    status_changed_at  TEXT
);
CREATE INDEX IF NOT EXISTS cards_user_id ON cards (user_id);

CREATE TABLE IF NOT EXISTS card_transactions (
    txn_id       TEXT PRIMARY KEY NOT NULL,
    card_id      TEXT NOT NULL REFERENCES cards (card_id),
    posted_at    TEXT NOT NULL,
    merchant     TEXT NOT NULL,
    category     TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency     TEXT NOT NULL DEFAULT 'USD',
    status       TEXT NOT NULL DEFAULT 'posted' CHECK (status IN ('pending', 'posted', 'disputed'))
);
CREATE INDEX IF NOT EXISTS card_transactions_card ON card_transactions (card_id, posted_at);

CREATE TABLE IF NOT EXISTS card_disputes (
    dispute_id   TEXT PRIMARY KEY NOT NULL,
    txn_id       TEXT NOT NULL UNIQUE REFERENCES card_transactions (txn_id),
    user_id      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'rejected')),
    created_at   TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS loan_products (
    kind             TEXT PRIMARY KEY NOT NULL CHECK (kind IN ('mortgage', 'personal', 'auto')),
    rate_bps         INTEGER NOT NULL,
    default_months   INTEGER NOT NULL,
    max_months       INTEGER NOT NULL,
    min_credit_score INTEGER NOT NULL,
    max_dti_bps      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS loans (
    loan_id            TEXT PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('mortgage', 'personal', 'auto')),
    principal_cents    INTEGER NOT NULL,
    outstanding_cents  INTEGER NOT NULL,
    rate_bps           INTEGER NOT NULL,
    term_months        INTEGER NOT NULL,
    payments_made      INTEGER NOT NULL,
    start_date         TEXT NOT NULL,
    repayment_account  TEXT NOT NULL REFERENCES accounts (account_id),
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paid_off'))
);
CREATE INDEX IF NOT EXISTS loans_user_id ON loans (user_id);

CREATE TABLE IF NOT EXISTS financial_profiles (
    user_id             TEXT PRIMARY KEY NOT NULL,
    annual_income_cents INTEGER NOT NULL,
    monthly_debt_cents  INTEGER NOT NULL,
    credit_score        INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS prices (
    symbol      TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    asset_class TEXT NOT NULL CHECK (asset_class IN ('equity', 'fixed_income', 'commodity')),
    price       REAL NOT NULL,
    currency    TEXT NOT NULL DEFAULT 'USD',
    as_of       TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS holdings (
    account_id       TEXT NOT NULL REFERENCES accounts (account_id),
    symbol           TEXT NOT NULL REFERENCES prices (symbol),
    quantity         REAL NOT NULL,
    cost_basis_cents INTEGER NOT NULL,
    PRIMARY KEY (account_id, symbol)
);

-- API keys of the gateway: digests only, never the secret.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     TEXT PRIMARY KEY NOT NULL,
    sha256     TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'agent', 'ingest', 'read')),
    bootstrap  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Whether the demo data was seeded (once, at first start).
CREATE TABLE IF NOT EXISTS _eventline_seed (
    name      TEXT PRIMARY KEY NOT NULL,
    seeded_at TEXT NOT NULL
);
