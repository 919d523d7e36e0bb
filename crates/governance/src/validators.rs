//! Checksums and numbering-plan rules that turn pattern candidates into findings.
//!
//! All functions take ASCII digit strings (or IBAN characters) and never panic.

/// Luhn (mod 10) check over a string of ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

fn prefix_num(digits: &[u8], n: usize) -> Option<u32> {
    if digits.len() < n {
        return None;
    }
    digits[..n].iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

/// The card network whose issuer identification number (IIN) range and PAN length match, if any.
pub fn card_network(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    if !(12..=19).contains(&len) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let p1 = prefix_num(digits, 1)?;
    let p2 = prefix_num(digits, 2)?;
    let p3 = prefix_num(digits, 3)?;
    let p4 = prefix_num(digits, 4)?;
    let p6 = prefix_num(digits, 6)?;
    let in_len = |lens: &[usize]| lens.contains(&len);
    let range = |lo: usize, hi: usize| (lo..=hi).contains(&len);
    if p1 == 4 && in_len(&[13, 16, 19]) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        return Some("mastercard");
    }
    if (p2 == 34 || p2 == 37) && len == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6)) && range(16, 19) {
        return Some("discover");
    }
    if (3528..=3589).contains(&p4) && range(16, 19) {
        return Some("jcb");
    }
    if ((300..=305).contains(&p3) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39) && range(14, 19) {
        return Some("diners");
    }
    if p2 == 62 && range(16, 19) {
        return Some("unionpay");
    }
    if [5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763].contains(&p4) && range(13, 19) {
        return Some("maestro");
    }
    if (2200..=2204).contains(&p4) && range(16, 19) {
        return Some("mir");
    }
    if ((506099..=506198).contains(&p6) || (650002..=650027).contains(&p6)) && in_len(&[16, 18, 19]) {
        return Some("verve");
    }
    if (p2 == 60 || p2 == 81 || p2 == 82 || p3 == 508) && len == 16 {
        return Some("rupay");
    }
    if p4 == 9792 && len == 16 {
        return Some("troy");
    }
    None
}

/// A payment card number: 13–19 digits, a known network's IIN and length, and a valid Luhn digit.
pub fn card_valid(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len()) && luhn_valid(digits) && card_network(digits).is_some()
}

/// SSA rules for a 9-digit SSN: area not 000, 666 or 900–999; group not 00; serial not 0000.
pub fn ssn_valid(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = prefix_num(digits, 3).unwrap_or(0);
    let group = prefix_num(&digits[3..], 2).unwrap_or(0);
    let serial = prefix_num(&digits[5..], 4).unwrap_or(0);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// IBAN length per country (ISO 13616 registry).
pub fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BI", 27),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DJ", 27),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FK", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"LY", 25),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MN", 20),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NI", 28),
        (b"NL", 18),
        (b"NO", 15),
        (b"OM", 23),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"RU", 33),
        (b"SA", 24),
        (b"SC", 31),
        (b"SD", 18),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"SO", 23),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
        (b"YE", 30),
    ];
    if country.len() != 2 {
        return None;
    }
    let upper = [country[0].to_ascii_uppercase(), country[1].to_ascii_uppercase()];
    TABLE.iter().find(|(cc, _)| **cc == upper).map(|&(_, len)| len)
}

/// ISO 13616 validation of a compact IBAN (no spaces, either case): country length and mod-97 = 1.
pub fn iban_valid(iban: &[u8]) -> bool {
    if iban.len() < 5 || !iban.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    if !iban[..2].iter().all(u8::is_ascii_alphabetic) || !iban[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    if iban_length(&iban[..2]) != Some(iban.len()) {
        return false;
    }
    let mut rem = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        let b = b.to_ascii_uppercase();
        if b.is_ascii_digit() {
            rem = (rem * 10 + u32::from(b - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(b - b'A') + 10) % 97;
        }
    }
    rem == 1
}

/// Length in digits of the ITU-T E.164 country code that `digits` starts with, if it is assigned.
pub fn e164_country_code_len(digits: &[u8]) -> Option<usize> {
    let p1 = prefix_num(digits, 1)?;
    if p1 == 1 || p1 == 7 {
        return Some(1);
    }
    let p2 = prefix_num(digits, 2)?;
    const TWO: &[u32] = &[
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61,
        62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    ];
    if TWO.contains(&p2) {
        return Some(2);
    }
    const THREE_PREFIX: &[u32] =
        &[21, 22, 23, 24, 25, 26, 28, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69, 80, 85, 87, 88, 96, 97, 99];
    (THREE_PREFIX.contains(&p2) && digits.len() >= 3).then_some(3)
}

/// A North American Numbering Plan number (10 digits): area and exchange start with 2–9.
pub fn nanp_valid(digits: &[u8]) -> bool {
    digits.len() == 10
        && digits.iter().all(u8::is_ascii_digit)
        && (b'2'..=b'9').contains(&digits[0])
        && (b'2'..=b'9').contains(&digits[3])
}

/// An E.164 number given as its digits after the `+`: assigned country code, 8–15 digits,
/// and for +1 a valid NANP national number.
pub fn e164_valid(digits: &[u8]) -> bool {
    if !(8..=15).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match e164_country_code_len(digits) {
        Some(1) if digits[0] == b'1' => nanp_valid(&digits[1..]),
        Some(cc) => digits.len() - cc >= 6,
        None => false,
    }
}

/// One IPv4 octet in canonical decimal form (0–255, no leading zero).
pub fn ipv4_octet_valid(octet: &[u8]) -> bool {
    match octet.len() {
        1 => octet[0].is_ascii_digit(),
        2 | 3 => {
            octet[0] != b'0'
                && octet.iter().all(u8::is_ascii_digit)
                && octet.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0')) <= 255
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_pans_and_rejects_one_digit_changes() {
        for pan in ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "2223003122003222"] {
            assert!(luhn_valid(pan.as_bytes()), "{pan}");
            assert!(card_valid(pan.as_bytes()), "{pan}");
        }
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!card_valid(b"4111111111111112"));
        assert!(!luhn_valid(b""));
    }

    #[test]
    fn card_networks_cover_mastercard_2_series_and_lengths() {
        assert_eq!(card_network(b"2221000000000009"), Some("mastercard"));
        assert_eq!(card_network(b"2720990000000007"), Some("mastercard"));
        assert_eq!(card_network(b"2721000000000000"), None);
        assert_eq!(card_network(b"4222222222222"), Some("visa"));
        assert_eq!(card_network(b"36227206271667"), Some("diners"));
        assert_eq!(card_network(b"3530111333300000"), Some("jcb"));
        assert_eq!(card_network(b"6200000000000005"), Some("unionpay"));
        assert_eq!(card_network(b"9400111899223100"), None, "USPS tracking prefix is no network");
        assert_eq!(card_network(b"37828224631000"), None, "Amex is 15 digits");
    }

    #[test]
    fn ssn_follows_ssa_rules() {
        assert!(ssn_valid(b"078051120"));
        assert!(ssn_valid(b"899991234"));
        for bad in ["000123456", "666123456", "900123456", "999123456", "123001234", "123450000", "12345678"] {
            assert!(!ssn_valid(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn iban_checks_length_and_mod97() {
        assert!(iban_valid(b"DE89370400440532013000"));
        assert!(iban_valid(b"GB82WEST12345698765432"));
        assert!(iban_valid(b"gb82west12345698765432"));
        assert!(iban_valid(b"NO9386011117947"));
        assert!(!iban_valid(b"DE88370400440532013000"), "checksum");
        assert!(!iban_valid(b"DE8937040044053201300"), "length");
        assert!(!iban_valid(b"ZZ89370400440532013000"), "country");
    }

    #[test]
    fn phone_numbering_plans() {
        assert_eq!(e164_country_code_len(b"442071838750"), Some(2));
        assert_eq!(e164_country_code_len(b"35312345678"), Some(3));
        assert!(e164_valid(b"14155552671"));
        assert!(!e164_valid(b"11155552671"), "NANP area cannot start with 1");
        assert!(e164_valid(b"442071838750"));
        assert!(!e164_valid(b"1234567"));
        assert!(nanp_valid(b"2125550147"));
        assert!(!nanp_valid(b"2121550147"));
    }

    #[test]
    fn ipv4_octets() {
        assert!(ipv4_octet_valid(b"0"));
        assert!(ipv4_octet_valid(b"255"));
        assert!(!ipv4_octet_valid(b"256"));
        assert!(!ipv4_octet_valid(b"01"));
        assert!(!ipv4_octet_valid(b"1000"));
    }
}
