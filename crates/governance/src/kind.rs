//! The kinds of PII the detector knows.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kind of personal data. Serialises as `SSN`, `CREDIT_CARD`, `EMAIL`, `PHONE`, `IBAN`, `IP_ADDRESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiKind {
    /// US Social Security Number.
    Ssn,
    /// Payment card number (PAN).
    CreditCard,
    /// E-mail address.
    Email,
    /// Telephone number, national or E.164.
    Phone,
    /// International Bank Account Number (ISO 13616).
    Iban,
    /// IPv4 or IPv6 address.
    IpAddress,
}

impl PiiKind {
    /// Every kind, in a stable order.
    pub const ALL: [PiiKind; 6] =
        [PiiKind::Ssn, PiiKind::CreditCard, PiiKind::Email, PiiKind::Phone, PiiKind::Iban, PiiKind::IpAddress];

    /// The wire name (`SSN`, `CREDIT_CARD`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Ssn => "SSN",
            PiiKind::CreditCard => "CREDIT_CARD",
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Iban => "IBAN",
            PiiKind::IpAddress => "IP_ADDRESS",
        }
    }

    /// Parses a wire name (case-sensitive).
    pub fn parse(name: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The typed mask that replaces a value of this kind, e.g. `[SSN]`.
    pub fn mask(self) -> &'static str {
        match self {
            PiiKind::Ssn => "[SSN]",
            PiiKind::CreditCard => "[CREDIT_CARD]",
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::IpAddress => "[IP_ADDRESS]",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
