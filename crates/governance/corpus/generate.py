#!/usr/bin/env python3
"""Generates corpus/pii.jsonl: labelled banking / support-chat text for the PII detector.

Written from realistic message shapes first (customer chat, agent answers, CRM notes, logs),
with hard negatives that look like PII but are not (Luhn-invalid numbers, order and tracking
numbers, dates, amounts, invalid SSN ranges, version strings, ISBNs, IBANs with a bad checksum).
Deterministic: `python3 corpus/generate.py > corpus/pii.jsonl`.

Labelling rules (the ground truth, independent of any detector):
- SSN: a US SSN in a valid SSA range, written 123-45-6789, 123 45 6789, or 123456789 when the text
  says it is an SSN. Invalid ranges (000/666/9xx area, 00 group, 0000 serial) are not SSNs.
- CREDIT_CARD: a Luhn-valid PAN of a real network (IIN + length), compact or grouped with spaces or
  dashes; span covers the digits and the separators between them.
- EMAIL: addr-spec with a real TLD. PHONE: E.164 (+CC...) or a national format (NANP, UK, DE, FR...),
  span from the '+' or '(' to the last digit. IBAN: checksum-valid, right length for its country,
  compact or in groups of four. IP_ADDRESS: IPv4 dotted quad or IPv6 (not a version string).
- Offsets are Unicode characters, end exclusive.
"""
import json
import random

R = random.Random(20260527)


def luhn_check_digit(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def rdigits(n):
    return "".join(R.choice("0123456789") for _ in range(n))


CARD_NETWORKS = [
    # (prefix generator, lengths, grouping)
    (lambda: "4", [16, 16, 16, 13, 19]),                                 # Visa
    (lambda: str(R.randint(51, 55)), [16]),                              # Mastercard
    (lambda: str(R.randint(2221, 2720)), [16]),                          # Mastercard 2-series
    (lambda: R.choice(["34", "37"]), [15]),                              # Amex
    (lambda: R.choice(["6011", "65", str(R.randint(644, 649))]), [16]),  # Discover
    (lambda: str(R.randint(3528, 3589)), [16]),                          # JCB
    (lambda: R.choice(["36", "38"]), [14]),                              # Diners
    (lambda: "62" + str(R.randint(0, 9)), [16, 19]),                     # UnionPay
    (lambda: R.choice(["6759", "6761", "5018", "5020", "6304"]), [16]),  # Maestro
    (lambda: str(R.randint(2200, 2204)), [16]),                          # Mir
]


def card_digits(valid=True):
    prefix_fn, lengths = R.choice(CARD_NETWORKS)
    prefix = prefix_fn()
    n = R.choice(lengths)
    body = prefix + rdigits(n - 1 - len(prefix))
    check = luhn_check_digit(body)
    if not valid:
        check = str((int(check) + R.randint(1, 9)) % 10)
    return body + check


def group_card(d, style):
    if style == "compact":
        return d
    sep = " " if style == "space" else "-"
    if len(d) == 15:
        parts = [d[:4], d[4:10], d[10:]]
    elif len(d) == 14:
        parts = [d[:4], d[4:10], d[10:]]
    else:
        parts = [d[i:i + 4] for i in range(0, len(d), 4)]
    return sep.join(parts)


def card(valid=True):
    return group_card(card_digits(valid), R.choice(["space", "space", "dash", "compact", "compact"]))


def ssn_parts(valid=True):
    area = R.randint(1, 899)
    while area == 666:
        area = R.randint(1, 899)
    group = R.randint(1, 99)
    serial = R.randint(1, 9999)
    if not valid:
        k = R.randint(0, 4)
        if k == 0:
            area = 0
        elif k == 1:
            area = 666
        elif k == 2:
            area = R.randint(900, 999)
        elif k == 3:
            group = 0
        else:
            serial = 0
    return f"{area:03d}", f"{group:02d}", f"{serial:04d}"


def ssn(valid=True, style=None):
    a, g, s = ssn_parts(valid)
    style = style or R.choice(["dash", "dash", "dash", "space"])
    if style == "dash":
        return f"{a}-{g}-{s}"
    if style == "space":
        return f"{a} {g} {s}"
    return f"{a}{g}{s}"


FIRST = ["john", "maria", "wei", "fatima", "oliver", "sofia", "lukas", "chloe", "arjun", "emma", "noah",
         "ana", "kenji", "leila", "pierre", "zoe", "mateo", "ines", "omar", "hannah"]
LAST = ["smith", "garcia", "zhang", "khan", "brown", "rossi", "mueller", "martin", "patel", "jones",
        "silva", "tanaka", "haddad", "dubois", "novak", "kowalski", "oconnor", "lee", "nguyen", "berg"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.com", "bank.co.uk", "mail.example.org",
           "company.io", "proton.me", "web.de", "orange.fr", "corp.example.net", "icloud.com", "uni-heidelberg.de"]


def email():
    f, l = R.choice(FIRST), R.choice(LAST)
    shape = R.randint(0, 6)
    if shape == 0:
        local = f"{f}.{l}"
    elif shape == 1:
        local = f"{f}{R.randint(1, 99)}"
    elif shape == 2:
        local = f"{f[0]}{l}"
    elif shape == 3:
        local = f"{f}.{l}+{R.choice(['bank', 'alerts', 'news'])}"
    elif shape == 4:
        local = f"{f}_{l}{R.randint(1970, 2005)}"
    elif shape == 5:
        local = f"{f.capitalize()}.{l.capitalize()}"
    else:
        local = f"{l}-{f}"
    return f"{local}@{R.choice(DOMAINS)}"


def phone():
    k = R.randint(0, 11)
    n = rdigits(4)
    area = str(R.randint(201, 989))
    exch = str(R.randint(200, 999))
    if k == 0:
        return f"({area}) {exch}-{n}"
    if k == 1:
        return f"{area}-{exch}-{n}"
    if k == 2:
        return f"{area}.{exch}.{n}"
    if k == 3:
        return f"+1 {area} {exch} {n}"
    if k == 4:
        return f"+1-{area}-{exch}-{n}"
    if k == 5:
        return f"+1{area}{exch}{n}"
    if k == 6:
        return f"+44 20 {rdigits(4)} {rdigits(4)}"
    if k == 7:
        return f"+44 7{rdigits(3)} {rdigits(6)}"
    if k == 8:
        return f"+49 30 {rdigits(8)}"
    if k == 9:
        return f"+33 {R.randint(1, 7)} {rdigits(2)} {rdigits(2)} {rdigits(2)} {rdigits(2)}"
    if k == 10:
        return R.choice([f"020 {rdigits(4)} {rdigits(4)}", f"07{rdigits(3)} {rdigits(6)}",
                         f"0{R.randint(1, 7)} {rdigits(2)} {rdigits(2)} {rdigits(2)} {rdigits(2)}"])
    return R.choice([f"+34 6{rdigits(2)} {rdigits(3)} {rdigits(3)}", f"+39 02 {rdigits(4)} {rdigits(4)}",
                     f"+31 6 {rdigits(8)}", f"+81 3 {rdigits(4)} {rdigits(4)}", f"+91 98{rdigits(3)} {rdigits(5)}"])


IBAN_LENGTHS = {"DE": 22, "GB": 22, "FR": 27, "ES": 24, "IT": 27, "NL": 18, "CH": 21, "AT": 20, "BE": 16,
                "PL": 28, "IE": 22, "PT": 25, "SE": 24, "DK": 18, "FI": 18, "NO": 15, "LU": 20}


def bban(cc, n):
    if cc in ("GB", "IE"):
        return "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + rdigits(n - 4)
    if cc == "NL":
        return "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + rdigits(n - 4)
    if cc == "IT":
        return R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + rdigits(n - 1)
    return rdigits(n)


def iban_check(cc, b):
    s = b + cc + "00"
    num = "".join(str(int(c, 36)) for c in s)
    return f"{98 - int(num) % 97:02d}"


def iban(valid=True):
    cc = R.choice(list(IBAN_LENGTHS))
    b = bban(cc, IBAN_LENGTHS[cc] - 4)
    chk = iban_check(cc, b)
    if not valid:
        chk = f"{(int(chk) + R.randint(1, 96)) % 97 + 2:02d}"
        if chk == iban_check(cc, b):
            chk = f"{(int(chk) + 1) % 97 + 2:02d}"
    raw = cc + chk + b
    if R.random() < 0.6:
        return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))
    return raw


def ipv4():
    k = R.randint(0, 3)
    if k == 0:
        return f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if k == 1:
        return f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}"
    return ".".join(str(R.randint(1, 254)) for _ in range(4))


def ipv6():
    k = R.randint(0, 4)
    hx = lambda: format(R.randint(0, 0xFFFF), "x")
    if k == 0:
        return ":".join(hx() for _ in range(8))
    if k == 1:
        return f"2001:db8::{hx()}:{hx()}"
    if k == 2:
        return f"fe80::{hx()}:{hx()}:{hx()}:{hx()}"
    if k == 3:
        return f"2a02:{hx()}:{hx()}::{R.randint(1, 99)}"
    return f"::ffff:{R.randint(1, 223)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


def ip():
    return ipv4() if R.random() < 0.65 else ipv6()


# ---------- negatives ----------

def order_no():
    return R.choice([f"#{rdigits(R.randint(8, 16))}", rdigits(R.randint(10, 16)), f"ORD-{R.randint(2019, 2026)}-{rdigits(6)}",
                     f"{rdigits(3)}-{rdigits(7)}-{rdigits(7)}"])


def tracking_no():
    return R.choice(["1Z" + "".join(R.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16)),
                     " ".join(["9400", rdigits(4), rdigits(4), rdigits(4), rdigits(4), rdigits(2)]),
                     rdigits(12), "JD" + rdigits(18)])


def date():
    y, m, d = R.randint(1990, 2027), R.randint(1, 12), R.randint(1, 28)
    return R.choice([f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{d} March {y}",
                     f"{y}{m:02d}{d:02d}", f"{y}-{m:02d}-{d:02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:00Z"])


def amount():
    return R.choice([f"${R.randint(1, 99999):,}.{R.randint(0, 99):02d}", f"€{R.randint(1, 9999)},{R.randint(0, 99):02d}",
                     f"{R.randint(1, 999)} {R.randint(100, 999)} {R.randint(100, 999)} JPY",
                     f"USD {R.randint(1000, 9999999):,}", f"{R.randint(1, 9)}.{R.randint(100, 999)}.{R.randint(100, 999)},00 EUR"])


def version():
    return R.choice([f"{R.randint(1, 20)}.{R.randint(0, 30)}.{R.randint(0, 9)}", f"{R.randint(1, 12)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 99)}",
                     f"10.0.{R.randint(17000, 22999)}.{R.randint(100, 4000)}", f"v{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}"])


def isbn():
    return R.choice(["978-3-16-148410-0", "0-306-40615-2", "978-0-596-52068-7", "9780262033848", "978-1-4028-9462-6",
                     "0-19-852663-6", "979-10-90636-07-1"])


def bad_card():
    return group_card(card_digits(False), R.choice(["space", "dash", "compact"]))


def random_digits_like_card():
    # Reference numbers that are not cards (first digit rules out every network).
    return group_card(R.choice("179") + rdigits(15), R.choice(["space", "compact"]))


def mac():
    return ":".join(format(R.randint(0, 255), "02X") for _ in range(6))


def time_of_day():
    return f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}"


GEN = {
    "SSN": lambda: (ssn(), "SSN"),
    "SSN9": lambda: (ssn(style="none"), "SSN"),
    "CARD": lambda: (card(), "CREDIT_CARD"),
    "EMAIL": lambda: (email(), "EMAIL"),
    "PHONE": lambda: (phone(), "PHONE"),
    "IBAN": lambda: (iban(), "IBAN"),
    "IP": lambda: (ip(), "IP_ADDRESS"),
    "IP4": lambda: (ipv4(), "IP_ADDRESS"),
    "IP6": lambda: (ipv6(), "IP_ADDRESS"),
    # hard negatives
    "BADSSN": lambda: (ssn(valid=False), None),
    "BADCARD": lambda: (bad_card(), None),
    "REFNUM": lambda: (random_digits_like_card(), None),
    "BADIBAN": lambda: (iban(valid=False), None),
    "ORDER": lambda: (order_no(), None),
    "TRACK": lambda: (tracking_no(), None),
    "DATE": lambda: (date(), None),
    "AMOUNT": lambda: (amount(), None),
    "VERSION": lambda: (version(), None),
    "ISBN": lambda: (isbn(), None),
    "MAC": lambda: (mac(), None),
    "TIME": lambda: (time_of_day(), None),
    "ACCT": lambda: (rdigits(R.randint(8, 12)), None),
    "ZIP": lambda: (f"{rdigits(5)}-{rdigits(4)}", None),
}

TEMPLATES = [
    # customer chat
    "Hi, my SSN is {SSN} and I need to update my address.",
    "hi there, ssn {SSN9}, please check my loan application",
    "Social Security Number: {SSN}",
    "My social security number is {SSN9} — can you verify?",
    "Please charge my card {CARD} for the annual fee.",
    "Card number {CARD}, expiry {DATE}",
    "I lost my Visa ending in 1234, the old number was {CARD}",
    "Can you send the statement to {EMAIL}?",
    "My new email is {EMAIL}, please update it 🙏",
    "Call me back at {PHONE} after 5pm",
    "Phone: {PHONE}",
    "You can reach me on {PHONE} or by mail at {EMAIL}.",
    "Please wire the money to IBAN {IBAN}",
    "Bankverbindung: {IBAN} (Sparkasse)",
    "Mi IBAN es {IBAN}, gracias.",
    "Mon numéro de téléphone est le {PHONE}, merci !",
    "Meine Telefonnummer lautet {PHONE}.",
    "我的邮箱是 {EMAIL}，电话 {PHONE}",
    "Login from unknown IP {IP} was blocked",
    "Suspicious sign-in from {IP} at {TIME}",
    "Client address {IP4} hit the rate limit",
    "Server {IP6} responded with 503",
    "Transfer received: {AMOUNT} to {IBAN} on {DATE}",
    "The payment of {AMOUNT} with card {CARD} was declined.",
    "Please update my SSN to {SSN} and my phone to {PHONE}",
    "Kunde: Jürgen Weiß, E-Mail {EMAIL}, Tel. {PHONE}",
    "Cliente José Ñúñez — tarjeta {CARD}, correo {EMAIL}",
    "Użytkownik zgłosił: {EMAIL} 👍 dzięki",
    "ok 👌 my card is {CARD} and email {EMAIL}",
    "{EMAIL}",
    "{PHONE}",
    "{CARD}",
    "Applicant SSN {SSN}, DOB {DATE}, income {AMOUNT}",
    "CRM note: customer called from {PHONE} about card {CARD}",
    "agent output: Your refund of {AMOUNT} goes to {IBAN}.",
    "Firewall log: DENY src={IP4} dst={IP4} port=443",
    "Connection from [{IP6}]:8443 accepted",
    "ping {IP4} — timeout after 3 s",
    "Der Kunde hat von {IP} aus zugegriffen 🔒",
    "Hola, soy Lucía. Mi tarjeta {CARD} fue rechazada ayer ({DATE}).",
    "Καλησπέρα, το email μου είναι {EMAIL}",
    "Привет! Мой номер {PHONE}, карта {CARD}",
    "こんにちは、メールは {EMAIL} です",
    "Please verify: name=Ana Silva; ssn={SSN}; email={EMAIL}",
    "{{\"user\": \"{EMAIL}\", \"ip\": \"{IP4}\"}}",
    "SSN on file: {SSN}. Card on file: {CARD}.",
    "Beneficiary IBAN: {IBAN} – reference: invoice {ORDER}",
    "Your order {ORDER} ships on {DATE}; questions? call {PHONE}",
    "I moved — new number {PHONE}, new email {EMAIL}.",
    "Text me at {PHONE} when the card {CARD} is activated",
    "SEPA transfer to {IBAN} scheduled for {DATE}",
    "IP {IP4} and {IP6} flagged by fraud model",
    "Taxpayer SSN: {SSN9}",
    "La carte {CARD} a été bloquée, appelez le {PHONE}.",
    "Loan officer: SSN {SSN} verified ✅",
    # hard negatives
    "Your order {ORDER} has shipped!",
    "Order number {ORDER} — estimated delivery {DATE}",
    "Tracking number: {TRACK}",
    "Track your parcel {TRACK} on the carrier site.",
    "The transaction of {AMOUNT} posted on {DATE}.",
    "Balance: {AMOUNT} as of {DATE}",
    "Please update the app to version {VERSION} to fix login.",
    "Running build {VERSION} on staging",
    "Firmware {VERSION} released {DATE}",
    "ISBN {ISBN} — Principles of Corporate Finance",
    "Book ref: {ISBN}",
    "Invalid SSN {BADSSN} rejected by validation",
    "The number {BADSSN} is not a valid SSN.",
    "Test card {BADCARD} failed the check.",
    "Card {BADCARD} was mistyped, please re-enter",
    "Reference {REFNUM} for your dispute",
    "Case id {REFNUM} opened",
    "IBAN {BADIBAN} has an invalid checksum",
    "Wrong IBAN: {BADIBAN}",
    "Device MAC {MAC} registered at {TIME}",
    "Meeting at {TIME} on {DATE}",
    "Account {ACCT} balance {AMOUNT}",
    "ZIP code {ZIP}",
    "Routing number {ACCT} for domestic wires",
    "Customer since {DATE}, loyalty tier gold",
    "Rate moved from 4.25% to 4.50% on {DATE}",
    "Invoice {ORDER} due {DATE}, total {AMOUNT}",
    "The stock closed at 187.42, up 1.2% on volume 12,345,678",
    "Pay {AMOUNT} by {DATE} to avoid a late fee.",
    "Reply STOP to 78901 to unsubscribe",
    "Use promo code SAVE2024 at checkout",
    "Error code 0x80070005 while installing {VERSION}",
    "see section 4.2.1 and appendix B",
    "follow @eventline_bank for updates",
    "logo file: icon@2x.png (retina)",
    "send it to support at example dot com",
    "Ticket {ORDER} closed by agent 42",
    "Shipment {TRACK} delayed until {DATE}",
    "The meeting room is 12B, floor 3, badge {ACCT}",
    "Wir haben {AMOUNT} am {DATE} gutgeschrieben.",
    "El pedido {ORDER} llegará el {DATE} 📦",
    "订单 {ORDER} 已发货",
    "Your verification code is 482913",
    "std::vector<int> v; v.push_back(42);",
    "Version {VERSION} of the SDK deprecates the v1 API",
    # mixed positives and negatives
    "Order {ORDER} was paid with card {CARD}",
    "Invalid SSN {BADSSN}; correct SSN is {SSN}",
    "Old card {BADCARD} replaced by {CARD}",
    "From {IP4} (app {VERSION}) user {EMAIL} logged in",
    "Wrong IBAN {BADIBAN}, please use {IBAN}",
    "Delivery {TRACK} for {EMAIL}, call {PHONE} if absent",
    "Paid {AMOUNT} on {DATE} from {IBAN}",
    "Tracking {TRACK}; contact {EMAIL}",
    "Case {REFNUM}: customer SSN {SSN}, phone {PHONE}",
]

PLAIN = [
    "What is my current balance?",
    "Can I increase my credit limit?",
    "I'd like to apply for a mortgage of 250k over 25 years.",
    "How do I dispute a charge from last week?",
    "What's the interest rate on the savings account?",
    "Thanks, that solved it! 😊",
    "Necesito ayuda con mi préstamo.",
    "Wie hoch sind die Gebühren für Auslandsüberweisungen?",
    "Quel est le plafond de ma carte ?",
    "我想查询我的账户余额",
    "Please close my account at the end of the month.",
    "Is the branch on 5th Avenue open on Saturday?",
    "My card was swallowed by the ATM at 3 pm.",
    "Show me the portfolio performance for Q3 2024.",
    "Buy 10 shares of AAPL at market.",
]


# Hand-written messages (markup: [[TYPE|value]] is a labelled entity, everything else is not).
HANDWRITTEN = [
    "hey, it's Dana. new cell is [[PHONE|415 555 2671]], old one is dead",
    "SSN#[[SSN|219-09-9999]] on the W-9, please file it",
    "card:[[CREDIT_CARD|4532015112830366]] exp 09/27 cvv on back",
    "IBAN: [[IBAN|FR14 2004 1010 0505 0001 3M02 606]] (BNP)",
    "Ring me on [[PHONE|+1 (415) 555-2671]] tomorrow",
    "Toll-free: [[PHONE|1-800-275-2273]]",
    "my number's [[PHONE|07700 900123]], text anytime",
    "DNS is [[IP_ADDRESS|8.8.8.8]] and gateway [[IP_ADDRESS|192.168.0.1]]",
    "health check on [[IP_ADDRESS|127.0.0.1]]:8080 failed",
    "Build 4.18.0.305 deployed to prod",
    "kernel 5.15.0.91 rolled back",
    "Amex [[CREDIT_CARD|3714 496353 98431]] please",
    "Mastercard [[CREDIT_CARD|5555-5555-5555-4444]] expired",
    "new MC 2-series [[CREDIT_CARD|2223000048400011]]",
    "JCB card [[CREDIT_CARD|3566 0020 2036 0505]]",
    "Diners [[CREDIT_CARD|3056 930902 5904]]",
    "Discover card [[CREDIT_CARD|6011 1111 1111 1117]] declined",
    "UnionPay [[CREDIT_CARD|6200 0000 0000 0005]]",
    "Please do not store 4111 1111 1111 1112 — it's a typo",
    "Order 1234567890123456 shipped",
    "Your confirmation number is 8842 1130 5567",
    "Tracking: 9400 1000 0000 0000 0000 00",
    "Transaction ID 20240315123456789012",
    "paid $12,345.67 on 03/15/2024 at 14:32",
    "amount €1.234,56 debited 2024-03-15",
    "the ratio was 3.14159 and pi is not PII",
    "ISBN-13: 978-0-306-40615-7",
    "ISBN 0-306-40615-2 paperback",
    "IBAN GB82 WEST 1234 5698 7654 31 is wrong, the right one is [[IBAN|GB82 WEST 1234 5698 7654 32]]",
    "Überweisung an [[IBAN|DE89370400440532013000]] ist erledigt ✔",
    "Mi IBAN: [[IBAN|ES91 2100 0418 4502 0005 1332]]",
    "IT IBAN [[IBAN|IT60X0542811101000000123456]]",
    "NL: [[IBAN|NL91ABNA0417164300]]",
    "Contact: [[EMAIL|jane.doe+billing@example.com]] / [[PHONE|(212) 555-0199]]",
    "email me at [[EMAIL|o'brien.k@mail.example.ie]]",
    "Reply to [[EMAIL|FINANCE@CORP.EXAMPLE.COM]]",
    "Schreiben Sie an [[EMAIL|jürgen.weiß@beispiel.de]]",
    "the file is avatar@3x.jpg",
    "ping me @john_doe on slack",
    "user at example dot com (spam-safe)",
    "SSN: [[SSN|123 45 6789]]",
    "ss number 000-00-0000 is a placeholder",
    "invalid ssn 666-45-6789",
    "ITIN 912-70-1234 is not an SSN",
    "date 123-45-0000 malformed",
    "My social security no. is [[SSN|536-22-8726]]",
    "Appointment 2024-05-06 10:30, room 4.12",
    "Version 2.4.1 released; upgrade from 2.3.9",
    "Server [[IP_ADDRESS|2606:4700:4700::1111]] is Cloudflare DNS",
    "loopback [[IP_ADDRESS|::1]] only",
    "MAC 3C:22:FB:90:11:7E is not an IP",
    "Time 23:59:59 UTC",
    "call [[PHONE|+49 89 12345678]] (Munich office)",
    "Tel.: [[PHONE|+33 1 42 68 53 00]]",
    "WhatsApp [[PHONE|+34 612 345 678]]",
    "phone [[PHONE|+81 3 1234 5678]], email [[EMAIL|tanaka@example.jp]]",
    "電話番号は [[PHONE|+81 90 1234 5678]] です",
    "客户电话 [[PHONE|+86 138 0013 8000]]",
    "Population 8 336 817 in 2023",
    "Invoice INV-2024-000123 total 1 250,00 €",
    "Part no. 4111-1111-11 in stock",
    "zip 94105-1234, CA",
    "coordinates 37.7749, -122.4194",
    "lat/long 48.8566 2.3522",
    "card ending 4242",
    "last four 1111",
    "card [[CREDIT_CARD|4000 0566 5566 5556]] is the debit one",
    "wire to [[IBAN|CH9300762011623852957]] ref. 778812",
    "SWIFT DEUTDEFF, IBAN [[IBAN|DE75 5121 0800 1245 1261 99]]",
    "bad IBAN CH9300762011623852958",
    "ip 256.1.1.1 is invalid",
    "range 10.0.0.0/8 is private, host [[IP_ADDRESS|10.1.2.3]]",
    "OID 1.3.6.1.4.1.311 registered",
    "fax [[PHONE|+44 20 7946 0958]]",
    "Call us: [[PHONE|020 7946 0958]]",
    "Teléfono [[PHONE|+52 55 1234 5678]]",
    "Mobil: [[PHONE|+49 151 23456789]]",
]


def render_markup(line):
    text, ents, i = "", [], 0
    while i < len(line):
        if line.startswith("[[", i):
            j = line.index("]]", i)
            kind, value = line[i + 2:j].split("|", 1)
            ents.append({"type": kind, "start": len(text), "end": len(text) + len(value)})
            text += value
            i = j + 2
        else:
            text += line[i]
            i += 1
    return {"text": text, "entities": ents}


def render(template):
    text = ""
    ents = []
    i = 0
    # manual placeholder expansion so literal braces ({{ }}) work
    while i < len(template):
        if template.startswith("{{", i):
            text += "{"
            i += 2
        elif template.startswith("}}", i):
            text += "}"
            i += 2
        elif template[i] == "{":
            j = template.index("}", i)
            value, kind = GEN[template[i + 1:j]]()
            start = len(text)
            text += value
            if kind:
                ents.append({"type": kind, "start": start, "end": len(text)})
            i = j + 1
        else:
            text += template[i]
            i += 1
    return {"text": text, "entities": ents}


def main():
    lines = []
    for t in TEMPLATES:
        for _ in range(6):
            lines.append(render(t))
    for h in HANDWRITTEN:
        lines.append(render_markup(h))
    for p in PLAIN:
        lines.append({"text": p, "entities": []})
    R.shuffle(lines)
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
