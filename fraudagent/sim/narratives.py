"""Past-case narratives that read as if many different analysts wrote them.

A narrative is assembled, not filled in: a scenario of the case's typology
draws concrete facts (amounts, counts, gaps, countries, devices), each
finding has several interchangeable phrasings in a full and a terse
register, a random subset of the optional findings is kept in random order,
and one of several writing styles (shorthand, passive paragraph, first
person, timeline, ticket fields, verdict first, latest first, questions)
lays them out with the outcome implied by the disposition and actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from fraudagent.core.models import Action, Disposition, Typology

Facts = dict[str, str]


@dataclass(frozen=True, slots=True)
class _Finding:
    full: tuple[str, ...]  # independent clauses starting in lower case
    terse: tuple[str, ...]  # analyst shorthand
    required: bool = False


@dataclass(frozen=True, slots=True)
class _Scenario:
    label: str  # "account takeover"
    short: str  # "ATO"
    facts: Callable[[Random, Callable[[float], str]], Facts]
    findings: tuple[_Finding, ...]
    triggers: tuple[str, ...]  # what opened the case, as a noun phrase
    doubts: tuple[str, ...] = ()  # what kept an inconclusive case open


_COUNTRIES = {
    "RO": "Romania",
    "VN": "Vietnam",
    "ID": "Indonesia",
    "UA": "Ukraine",
    "NG": "Nigeria",
    "PH": "the Philippines",
    "TR": "Turkey",
    "RU": "Russia",
    "IN": "India",
    "TH": "Thailand",
    "BR": "Brazil",
    "US": "the US",
    "GB": "the UK",
    "DE": "Germany",
    "FR": "France",
    "CA": "Canada",
    "ES": "Spain",
    "IT": "Italy",
    "MX": "Mexico",
    "JP": "Japan",
    "AU": "Australia",
    "PL": "Poland",
    "NL": "the Netherlands",
}
_ORIGINS = ("RO", "VN", "ID", "UA", "NG", "PH", "TR", "RU", "IN", "TH", "BR")
_HOMES = ("US", "US", "US", "GB", "DE", "FR", "CA", "ES", "IT", "AU", "PL", "NL", "BR", "MX")
_ATTACK_DEVICES = ("Windows PC", "laptop", "Android phone", "iPhone", "desktop PC", "tablet")
_DEVICE_SHORT = {
    "Windows PC": "PC",
    "laptop": "laptop",
    "Android phone": "android",
    "iPhone": "iphone",
    "desktop PC": "PC",
    "tablet": "tablet",
}
_TEAMS = (
    "the payments team",
    "T&S leads",
    "L2",
    "chargeback ops",
    "the ring investigations team",
    "the senior analyst on call",
)
_SALES = ("Halloween Sale", "Summer Sale", "Black Friday week", "Winter Sale", "Spring Sale", "Days of Play")


def _country(rng: Random, pool: tuple[str, ...], facts: Facts, key: str, *, other_than: str = "") -> None:
    code = rng.choice([c for c in pool if c != other_than])
    facts[key] = _COUNTRIES[code]
    facts[f"{key}_code"] = code


def _takeover_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    change = rng.choice(
        (
            ("password reset", "pw reset", "reset"),
            ("email change", "email chg", "email change"),
            ("MFA removal", "MFA off", "MFA change"),
            ("password reset and MFA removal", "pw reset + MFA off", "reset"),
        )
    )
    count, face = rng.randint(3, 9), rng.choice((50, 100))
    item = rng.choice(
        (("gift cards", "GC"), ("currency packs", "VC packs"), ("gift cards and currency packs", "GC/VC"))
    )
    device = rng.choice(_ATTACK_DEVICES)
    facts = {
        "device": device,
        "device_short": _DEVICE_SHORT[device],
        "change": change[0],
        "change_short": change[1],
        "change_word": change[2],
        "gap1": str(rng.randint(1, 15)),
        "gap2": str(rng.randint(2, 30)),
        "n": str(count),
        "item": item[0],
        "item_short": item[1],
        "total": money(count * face),
        "span": str(rng.randint(5, 60)),
        "fails": str(rng.randint(2, 9)),
        "age": str(rng.randint(2, 11)),
        "report_h": str(rng.randint(1, 30)),
    }
    _country(rng, _ORIGINS, facts, "origin")
    _country(rng, _HOMES, facts, "home", other_than=facts["origin_code"])
    return facts


def _stolen_card_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    count = rng.randint(3, 8)
    facts = {
        "age_days": str(rng.randint(0, 5)),
        "n": str(count),
        "total": money(count * rng.choice((60, 80, 100))),
        "cards": str(rng.randint(2, 3)),
        "declines": str(rng.randint(2, 4)),
        "cb": str(rng.randint(1, count)),
        "cb_days": str(rng.randint(7, 35)),
        "hours": str(rng.randint(1, 6)),
        "domain": rng.choice(("a throwaway mail domain", "a disposable inbox", "a burner email domain")),
    }
    # what the storyline buys: things that resell (sim/fraud.py `_resale_item`)
    item = rng.choice(
        (
            ("gift cards", "GC"),
            ("currency packs", "VC packs"),
            ("gift cards and currency packs", "GC/VC"),
            ("games", "games"),
        )
    )
    facts["item"], facts["item_short"] = item
    _country(rng, _HOMES, facts, "bin")
    _country(rng, _ORIGINS, facts, "ip", other_than=facts["bin_code"])
    return facts


def _card_testing_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    attempts = rng.randint(12, 60)
    facts = {
        "attempts": str(attempts),
        "cards": str(rng.randint(max(4, attempts // 4), attempts)),
        "minutes": str(rng.randint(5, 40)),
        "declined_pct": str(rng.randint(70, 95)),
        "passed": str(rng.randint(1, 8)),
        "small": money(0.99),
        "created_h": str(rng.randint(2, 20)),
        "bins": str(rng.randint(3, 9)),
    }
    _country(rng, _ORIGINS, facts, "origin")
    return facts


def _friendly_fraud_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    item = rng.choice(("game", "currency pack", "deluxe edition", "season pass"))
    device = rng.choice(("console", "PC", "console"))
    return {
        "item": item,
        "amount": money(rng.choice((49.99, 59.99, 69.99, 99.99))),
        "cb_days": str(rng.randint(14, 60)),
        "plays": str(rng.randint(3, 40)),
        "device": device,
        "tenure": str(rng.randint(1, 12)),
        "prior": str(rng.randint(0, 3)),
        "hours": str(rng.randint(4, 60)),
        "quote": rng.choice(
            ("I did not authorize this purchase", "not me", "never made this transaction", "unauthorized charge")
        ),
    }


def _refund_abuse_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    purchases = rng.randint(8, 20)
    refunds = rng.randint(max(5, purchases // 2), purchases - 1)
    return {
        "purchases": str(purchases),
        "refunds": str(refunds),
        "ratio": str(round(100 * refunds / purchases)),
        "weeks": str(rng.randint(3, 10)),
        "approved": str(rng.randint(3, refunds)),
        "paid": money(rng.randint(3, refunds) * 40),
        "reason": rng.choice(("didnt like it", "game doesnt work", "accidental purchase", "refund pls", "it crashes")),
    }


def _laundering_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    count = rng.randint(4, 15)
    return {
        "n": str(count),
        "total": money(count * rng.choice((50, 100))),
        "cards": str(rng.randint(2, 4)),
        "redeemers": str(rng.randint(2, 5)),
        "hours": str(rng.randint(1, 12)),
        "cb": str(rng.randint(2, max(2, count // 2))),
        "device": rng.choice(("PC", "laptop", "phone")),
    }


def _promo_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    return {
        "accounts": str(rng.randint(4, 12)),
        "hours": str(rng.randint(1, 48)),
        "device": rng.choice(("phone", "PC", "laptop")),
        "pay": str(rng.randint(1, 2)),
        "saved": money(rng.randint(4, 12) * 30),
    }


def _mule_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    return {
        "accounts": str(rng.randint(3, 8)),
        "devices": str(rng.randint(1, 3)),
        "cards": str(rng.randint(2, 4)),
        "topup": money(rng.choice((50, 100))),
        "total": money(rng.randint(4, 20) * 100),
        "weeks": str(rng.randint(2, 10)),
        "gifts": str(rng.randint(2, 9)),
    }


def _travel_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    facts = {
        "days": str(rng.randint(4, 14)),
        "device": rng.choice(("laptop", "phone", "iPhone")),
        "n": str(rng.randint(2, 5)),
        "total": money(rng.randint(2, 12) * 10),
    }
    _country(rng, _HOMES, facts, "home")
    _country(rng, ("ES", "FR", "IT", "MX", "JP", "TH", "GB", "US", "NL"), facts, "dest", other_than=facts["home_code"])
    return facts


def _console_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    return {
        "n": str(rng.randint(1, 4)),
        "total": money(rng.randint(3, 14) * 20),
        "gap": str(rng.randint(2, 15)),
        "years": str(rng.randint(2, 10)),
    }


def _gift_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    count = rng.randint(2, 6)
    return {
        "n": str(count),
        "total": money(count * rng.choice((25, 50))),
        "sale": rng.choice(_SALES),
        "years": str(rng.randint(2, 10)),
    }


def _family_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    return {
        "k": str(rng.randint(2, 4)),
        "years": str(rng.randint(2, 8)),
        "amount": money(rng.choice((9.99, 19.99, 49.99))),
    }


def _duplicate_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    return {
        "secs": str(rng.randint(2, 50)),
        "amount": money(rng.choice((39.99, 59.99, 69.99))),
        "days": str(rng.randint(5, 25)),
    }


def _newcomer_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    offer = rng.choice(
        (
            ("the first-purchase discount", "first-purchase promo"),
            ("a free trial", "trial"),
            ("the welcome discount", "welcome promo"),
        )
    )
    return {
        "age_days": str(rng.randint(0, 6)),
        "offer": offer[0],
        "offer_short": offer[1],
        "n": str(rng.randint(1, 3)),
        "total": money(rng.randint(1, 6) * 10),
        "device": rng.choice(("console", "phone", "PC")),
    }


def _card_trouble_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    return {
        "declines": str(rng.randint(2, 6)),
        "minutes": str(rng.randint(2, 30)),
        "item": rng.choice(("game", "currency pack", "season pass", "deluxe edition")),
        "amount": money(rng.choice((19.99, 49.99, 59.99, 69.99))),
        "years": str(rng.randint(2, 10)),
    }


def _recovery_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    facts = {
        "fails": str(rng.randint(1, 4)),
        "gap": str(rng.randint(2, 20)),
        "n": str(rng.randint(1, 4)),
        "total": money(rng.randint(2, 10) * 10),
        "years": str(rng.randint(2, 10)),
    }
    _country(rng, ("ES", "FR", "IT", "MX", "JP", "TH", "GB", "US", "NL"), facts, "dest")
    return facts


def _expat_facts(rng: Random, money: Callable[[float], str]) -> Facts:
    count = rng.randint(2, 5)
    facts = {
        "age_days": str(rng.randint(1, 6)),
        "n": str(count),
        "total": money(count * rng.choice((25, 50))),
    }
    _country(rng, _HOMES, facts, "home")
    return facts


def _finding(full: tuple[str, ...], terse: tuple[str, ...], required: bool = False) -> _Finding:
    return _Finding(full, terse, required)


_SCENARIOS: dict[Typology, tuple[_Scenario, ...]] = {
    Typology.account_takeover: (
        _Scenario(
            label="account takeover",
            short="ATO",
            facts=_takeover_facts,
            findings=(
                _finding(
                    (
                        "a login came from a {device} never seen on the account, with an IP in {origin}",
                        "the session started on an unfamiliar {device} connecting from {origin}",
                        "someone signed in from {origin} on a new {device}",
                    ),
                    ("new {device_short} login from {origin_code}", "login {origin_code}, unseen {device_short}"),
                ),
                _finding(
                    (
                        "a {change} followed {gap1} minutes later",
                        "{gap1} minutes after that login there was a {change}",
                        "the same session did a {change} within {gap1} min",
                    ),
                    ("{change_short} +{gap1}m", "{change_short} {gap1} min after login"),
                    required=True,
                ),
                _finding(
                    (
                        "{n} {item} worth {total} were bought within {span} minutes,"
                        " the first {gap2} minutes after the {change_word}",
                        "the saved card paid for {n} {item} ({total}) in {span} minutes",
                        "within {span} minutes the account bought {n} {item} for {total}",
                    ),
                    ("{n}x {item_short} = {total} in {span}m", "{n} {item_short} / {total} / {span} min"),
                    required=True,
                ),
                _finding(
                    (
                        "there were {fails} failed logins just before",
                        "{fails} failed password attempts preceded the login",
                    ),
                    ("{fails} failed logins first",),
                ),
                _finding(
                    (
                        "the account is {age} years old and had only ever been used from {home}",
                        "nothing in {age} years of history came from outside {home}",
                    ),
                    ("{age}y acct, always {home_code}",),
                ),
                _finding(
                    (
                        "the owner contacted support {report_h} hours later saying they had not made the purchases",
                        "the customer wrote in after {report_h} h to say the account was hacked",
                    ),
                    ("owner reported hack +{report_h}h",),
                ),
            ),
            triggers=(
                "a model score on the first gift card purchase",
                "a customer report",
                "a model alert on the purchases after the {change_word}",
            ),
            doubts=(
                "only one purchase followed and it matched what the customer usually buys",
                "the customer never answered the verification request",
                "the owner's own console logged in again from {home} the next day,"
                " so shared credentials cannot be ruled out",
            ),
        ),
    ),
    Typology.stolen_card: (
        _Scenario(
            label="stolen card fraud",
            short="stolen card",
            facts=_stolen_card_facts,
            findings=(
                _finding(
                    (
                        "the card was issued in {bin} while every login came from {ip}",
                        "the BIN country ({bin}) never matched the IP country ({ip})",
                    ),
                    ("BIN {bin_code} / IP {ip_code}", "BIN-IP mismatch {bin_code}-{ip_code}"),
                    required=True,
                ),
                _finding(
                    (
                        "the account was {age_days} days old when it started buying",
                        "the account had been opened {age_days} days before",
                    ),
                    ("acct {age_days}d old",),
                ),
                _finding(
                    (
                        "{n} high-value purchases ({item}) totalling {total} went through within {hours} hours",
                        "it bought {n} {item} for {total} in about {hours} hours",
                    ),
                    ("{n} buys ({item_short}) {total} in {hours}h",),
                    required=True,
                ),
                _finding(  # the storyline's issuer declines a fifth of the attempts: most cases see one, not all
                    (
                        "{declines} more attempts were declined in between",
                        "the issuer declined {declines} of the attempts",
                    ),
                    ("{declines} declined",),
                ),
                _finding(
                    (
                        "{cb} chargebacks arrived {cb_days} days later, coded as fraud by the issuer",
                        "the issuer sent {cb} fraud chargebacks after {cb_days} days",
                    ),
                    ("{cb} CBs after {cb_days}d",),
                ),
                _finding(
                    (
                        "{cards} different cards were added within a day",
                        "the wallet held {cards} cards added back to back",
                    ),
                    ("{cards} cards added in 1 day",),
                ),
                _finding(("the sign-up used {domain}",), ("throwaway email",)),
            ),
            triggers=(
                "a model score on a high-value purchase",
                "an issuer chargeback",
                "a model alert on the second card",
            ),
            doubts=(
                "the issuer had not confirmed fraud yet",
                "the customer said the card belonged to a parent who was travelling",
            ),
        ),
    ),
    Typology.card_testing: (
        _Scenario(
            label="card testing",
            short="card testing",
            facts=_card_testing_facts,
            findings=(
                _finding(
                    (
                        "{attempts} charges of {small} were tried on {cards} different cards in {minutes} minutes",
                        "someone ran {attempts} small {small} attempts across {cards} cards inside {minutes} minutes",
                    ),
                    ("{attempts} attempts x {small}, {cards} cards, {minutes}m",),
                    required=True,
                ),
                _finding(
                    (
                        "{declined_pct}% were declined and {passed} went through",
                        "all but {passed} attempts were declined ({declined_pct}%)",
                    ),
                    ("{declined_pct}% declined, {passed} passed",),
                    required=True,
                ),
                _finding(
                    (
                        "every attempt came from one PC on an IP in {origin}",
                        "one machine in {origin} made all the attempts",
                    ),
                    ("single PC, {origin_code} IP",),
                ),
                _finding(
                    (
                        "the account had been created {created_h} hours earlier",
                        "sign-up was only {created_h} h before the burst",
                    ),
                    ("acct created {created_h}h before",),
                ),
                _finding(("the cards came from {bins} different issuing countries",), ("{bins} BIN countries",)),
            ),
            triggers=(
                "a velocity rule on declines",
                "a model score on the tenth declined charge",
                "the payment processor's alert",
            ),
            doubts=("there were only a few attempts and the customer says they mistyped card numbers",),
        ),
    ),
    Typology.friendly_fraud: (
        _Scenario(
            label="friendly fraud",
            short="FF",
            facts=_friendly_fraud_facts,
            findings=(
                _finding(
                    (
                        'a chargeback for {amount} came in {cb_days} days after the purchase, saying "{quote}"',
                        "the cardholder disputed the {amount} {item} after {cb_days} days as unauthorised",
                    ),
                    ("CB {amount} at +{cb_days}d, 'not authorised'", "dispute {amount}, {cb_days}d later"),
                    required=True,
                ),
                _finding(
                    (
                        "the same {device} kept playing afterwards, {plays} sessions after the purchase",
                        "the {device} that made the purchase logged in {plays} more times after it",
                    ),
                    ("{plays} sessions on same {device} after", "kept playing ({plays} logins)"),
                ),
                _finding(
                    (
                        "the purchase came from the customer's usual {device} and home IP",
                        "nothing about the purchase was new: same {device}, same network",
                    ),
                    ("usual {device} + home IP",),
                ),
                _finding(
                    (
                        "the customer has been with us {tenure} years with {prior} earlier disputes",
                        "{tenure}-year account, {prior} prior disputes",
                    ),
                    ("{tenure}y customer, {prior} prior CBs",),
                ),
                _finding(
                    (
                        "the {item} was in use within {hours} hours",
                        "the disputed {item} was downloaded and used within {hours} h",
                    ),
                    ("{item} used within {hours}h",),
                ),
            ),
            triggers=("an incoming chargeback", "a chargeback notification from the acquirer"),
            doubts=(
                "the purchase came from a phone seen only once",
                "there was no play after the purchase, so a household member cannot be ruled out",
            ),
        ),
    ),
    Typology.refund_abuse: (
        _Scenario(
            label="refund abuse",
            short="refund abuse",
            facts=_refund_abuse_facts,
            findings=(
                _finding(
                    (
                        "there were {refunds} refund requests on {purchases} purchases in {weeks} weeks ({ratio}%)",
                        "{ratio}% of the purchases in the last {weeks} weeks were followed by a refund request"
                        " ({refunds} of {purchases})",
                    ),
                    ("{refunds}/{purchases} refunded ({ratio}%) in {weeks}w",),
                    required=True,
                ),
                _finding(
                    (
                        'the reasons were short and repeated, mostly "{reason}"',
                        'every request said something like "{reason}"',
                    ),
                    ("reason always '{reason}'",),
                ),
                _finding(
                    (
                        "{approved} refunds ({paid}) had already been paid out before the pattern was spotted",
                        "we had paid back {paid} on {approved} requests before anyone noticed",
                    ),
                    ("{approved} already paid ({paid})",),
                ),
            ),
            triggers=("a model alert on the latest refund request", "a refund-rate rule"),
            doubts=("several of the titles had known crash issues at the time",),
        ),
    ),
    Typology.gift_card_laundering: (
        _Scenario(
            label="gift card laundering",
            short="GC laundering",
            facts=_laundering_facts,
            findings=(
                _finding(
                    (
                        "{n} gift cards ({total}) were bought with {cards} different cards",
                        "one account bought {n} gift cards for {total} using {cards} cards",
                    ),
                    ("{n} GCs {total} on {cards} cards",),
                    required=True,
                ),
                _finding(
                    (
                        "they were redeemed on {redeemers} other accounts within {hours} hours",
                        "{redeemers} other accounts redeemed them, all within {hours} h",
                    ),
                    ("redeemed on {redeemers} accts within {hours}h",),
                    required=True,
                ),
                _finding(
                    (
                        "the buyer and the redeemers used the same {device} and IP",
                        "every redemption came from the buyer's {device}",
                    ),
                    ("same {device}/IP across accts",),
                ),
                _finding(
                    (
                        "the redeemed balance went straight into currency packs",
                        "balances were spent on currency packs right after redemption",
                    ),
                    ("cashed out into VC",),
                ),
                _finding(
                    (
                        "{cb} of the gift card purchases were charged back later",
                        "{cb} chargebacks followed on the buying cards",
                    ),
                    ("{cb} CBs on buyer cards",),
                ),
            ),
            triggers=("a model alert on a redemption", "a chargeback on a gift card purchase"),
            doubts=("the redeeming accounts could be friends of the buyer and no chargebacks had arrived yet",),
        ),
    ),
    Typology.promo_abuse: (
        _Scenario(
            label="promo abuse",
            short="promo abuse",
            facts=_promo_facts,
            findings=(
                _finding(
                    (
                        "{accounts} new accounts were created on one {device} within {hours} hours",
                        "one {device} opened {accounts} accounts in {hours} h",
                    ),
                    ("{accounts} new accts / 1 {device} / {hours}h",),
                    required=True,
                ),
                _finding(
                    (
                        "each took the free trial and the 50% first-purchase discount",
                        "every one of them used the trial and the first-purchase promo",
                    ),
                    ("trial + FIRST50 on each",),
                    required=True,
                ),
                _finding(
                    (
                        "{pay} payment methods were shared across all of them",
                        "they paid with the same {pay} instrument(s)",
                    ),
                    ("{pay} shared payment method(s)",),
                ),
                _finding(
                    (
                        "none of the accounts was used again after the discounted purchase",
                        "the accounts went quiet right after the promo",
                    ),
                    ("no activity after promo",),
                ),
                _finding(("the discounts were worth about {saved} in total",), ("~{saved} in discounts",)),
            ),
            triggers=("a model alert on the shared device", "a promo redemption rule"),
            doubts=("a household with several children could look like this",),
        ),
    ),
    Typology.mule_ring: (
        _Scenario(
            label="mule ring",
            short="mule ring",
            facts=_mule_facts,
            findings=(
                _finding(
                    (
                        "{accounts} accounts shared {devices} devices and {cards} cards",
                        "the ring was {accounts} accounts on {devices} devices paying with {cards} shared cards",
                    ),
                    ("{accounts} accts / {devices} devices / {cards} cards shared",),
                    required=True,
                ),
                _finding(
                    (
                        "top-ups of {topup} were spread across the accounts from the same cards",
                        "the same cards topped up different accounts with {topup} at a time",
                    ),
                    ("{topup} top-ups across accts, same cards",),
                ),
                _finding(
                    ("{gifts} gift cards bought on one account were redeemed on another within hours",),
                    ("{gifts} GCs moved between accts",),
                ),
                _finding(
                    (
                        "one account cashed out {total} in currency packs over {weeks} weeks",
                        "about {total} left the ring as currency packs over {weeks} weeks",
                    ),
                    ("cash-out {total} in VC over {weeks}w",),
                ),
            ),
            triggers=("a model alert on shared instruments", "a linked-account rule"),
            doubts=("a gaming cafe sharing hardware could explain the device overlap",),
        ),
    ),
    Typology.legitimate: (
        _Scenario(
            label="travel",
            short="travel",
            facts=_travel_facts,
            findings=(
                _finding(
                    (
                        "logins and {n} purchases came from {dest} over {days} days",
                        "the customer played from {dest} for {days} days and bought {n} items",
                    ),
                    ("{days}d of activity from {dest_code}, {n} buys",),
                    required=True,
                ),
                _finding(
                    ("it was the same {device} as always", "the {device} was one the account has used for years"),
                    ("same {device} as always",),
                ),
                _finding(
                    (
                        "the card was the customer's usual one, issued in {home}",
                        "payment was the customer's usual card from {home}, hence the BIN mismatch",
                    ),
                    ("usual {home_code} card",),
                ),
                _finding(
                    (
                        "the customer confirmed they were travelling",
                        "the customer replied that they were on holiday in {dest}",
                    ),
                    ("cust confirmed trip",),
                ),
            ),
            triggers=("a new-country rule", "a model score on a purchase abroad"),
        ),
        _Scenario(
            label="new console",
            short="new console",
            facts=_console_facts,
            findings=(
                _finding(
                    (
                        "a new console appeared on the home IP",
                        "the customer set up a console we had not seen, on their usual network",
                    ),
                    ("new console, home IP",),
                    required=True,
                ),
                _finding(
                    (
                        "a password reset was done on it {gap} minutes after the first login",
                        "they reset the password on the new console after {gap} min",
                    ),
                    ("pw reset +{gap}m on new console",),
                ),
                _finding(
                    (
                        "{n} games ({total}) were bought for it the same evening",
                        "the purchases were {n} games for {total}, normal for this account",
                    ),
                    ("{n} games {total}",),
                ),
                _finding(
                    ("the account has {years} years of clean history", "{years} years without a single dispute"),
                    ("{years}y clean",),
                ),
            ),
            triggers=("a new-device model alert", "a customer asking about a sign-in alert"),
        ),
        _Scenario(
            label="sale gifting",
            short="gift spree",
            facts=_gift_facts,
            findings=(
                _finding(
                    (
                        "{n} gift cards ({total}) were bought during the {sale}",
                        "the customer bought {n} gift cards for {total} in the {sale}",
                    ),
                    ("{n} GCs {total} in {sale}",),
                    required=True,
                ),
                _finding(
                    (
                        "the gift messages were addressed to friends and family",
                        "every card carried a birthday or holiday message",
                    ),
                    ("gift msgs to friends",),
                ),
                _finding(
                    (
                        "they were redeemed by long-standing accounts, none linked to the buyer's devices",
                        "the recipients were old accounts with their own devices",
                    ),
                    ("redeemed by unrelated old accts",),
                ),
                _finding(
                    (
                        "the buyer has {years} years of history and their own card",
                        "{years}-year customer paying with their usual card",
                    ),
                    ("{years}y customer, own card",),
                ),
            ),
            triggers=("a gift-card share rule", "a model alert on the gift card purchases"),
        ),
        _Scenario(
            label="family sharing",
            short="family",
            facts=_family_facts,
            findings=(
                _finding(
                    (
                        "{k} accounts share one console and one card in the same household",
                        "the linked accounts are a family: {k} accounts, one console, the parent's card",
                    ),
                    ("{k} accts, 1 console, 1 card - household",),
                    required=True,
                ),
                _finding(
                    (
                        "the {amount} purchase was made by a child's account with the parent's card",
                        "a kid bought {amount} of currency on the parent's card",
                    ),
                    ("kid used parent card ({amount})",),
                ),
                _finding(
                    ("the household IP has been stable for {years} years", "same home network for {years} years"),
                    ("home IP stable {years}y",),
                ),
            ),
            triggers=("a shared-instrument rule", "a parent's report of an unknown charge"),
        ),
        _Scenario(
            label="duplicate charge",
            short="dupe",
            facts=_duplicate_facts,
            findings=(
                _finding(
                    (
                        "two identical charges of {amount} went through {secs} seconds apart",
                        "the payment was captured twice, {secs} s apart, {amount} each",
                    ),
                    ("double capture {amount}, {secs}s apart",),
                    required=True,
                ),
                _finding(
                    (
                        "the chargeback covered only the duplicate and came {days} days later",
                        "the bank disputed the second charge after {days} days",
                    ),
                    ("CB on the dupe only (+{days}d)",),
                ),
            ),
            triggers=("an incoming chargeback",),
        ),
        # The four below mirror look-alike storylines of the world (sim/lookalikes.py) that the store had no
        # write-ups of: honest newcomers, card trouble, owners recovering their account, expats paying from home.
        _Scenario(
            label="new customer",
            short="newcomer",
            facts=_newcomer_facts,
            findings=(
                _finding(
                    (
                        "the account was created {age_days} days before the alert and used {offer} once",
                        "a new customer, {age_days} days old, took {offer} once, as intended",
                    ),
                    ("new account ({age_days}d), {offer_short} used once",),
                    required=True,
                ),
                _finding(
                    (
                        "the card's country matched the home network",
                        "card and home network are in the same country",
                    ),
                    ("card country = home IP",),
                ),
                _finding(
                    (
                        "{n} purchases for {total} on a {device}, a normal first basket",
                        "they bought {n} items for {total} on their {device}",
                    ),
                    ("{n} buys {total} on {device}",),
                ),
            ),
            triggers=("a new-account model score", "a first-purchase rule"),
        ),
        _Scenario(
            label="card trouble",
            short="declines",
            facts=_card_trouble_facts,
            findings=(
                _finding(
                    (
                        "the bank declined {declines} attempts to buy the same {item} within {minutes} minutes",
                        "the customer retried a {amount} {item} {declines} times in {minutes} minutes, "
                        "each attempt declined by the bank",
                    ),
                    ("{declines} declined attempts, same {item}, {minutes}m",),
                    required=True,
                ),
                _finding(
                    (
                        "it was the usual device on the home network",
                        "every attempt came over the customer's home network",
                    ),
                    ("usual device + home IP",),
                ),
                _finding(
                    (
                        "the account has {years} years of clean history",
                        "{years} years without a single dispute",
                    ),
                    ("{years}y clean",),
                ),
                _finding(
                    (
                        "the customer wrote in to ask why the payment kept failing",
                        "the customer contacted support about the failed payments",
                    ),
                    ("cust asked support re failures",),
                ),
            ),
            triggers=("a decline-velocity rule", "a payment-failure model alert"),
        ),
        _Scenario(
            label="account recovery",
            short="recovery",
            facts=_recovery_facts,
            findings=(
                _finding(
                    (
                        "after {fails} failed logins the owner reset the password from a new phone",
                        "locked out, the customer reset the password on a new phone after {fails} failed "
                        "password attempts",
                    ),
                    ("{fails} failed logins, pw reset from new phone",),
                    required=True,
                ),
                _finding(
                    (
                        "they were abroad at the time, in {dest}",
                        "the reset was done while the customer was on holiday in {dest}",
                    ),
                    ("owner abroad ({dest_code})",),
                ),
                _finding(
                    (
                        "what they bought next ({n} items, {total}) fits their history",
                        "the {n} purchases after the reset ({total}) look like their earlier ones",
                    ),
                    ("{n} buys {total} after reset, in pattern",),
                ),
                _finding(
                    ("the account has {years} years of history", "a {years}-year customer"),
                    ("{years}y acct",),
                ),
                _finding(
                    (
                        "the owner contacted support to confirm the reset was theirs",
                        "the customer confirmed by phone that they had changed the password",
                    ),
                    ("owner confirmed reset",),
                ),
            ),
            triggers=("a credential-change model alert", "an account-takeover rule"),
        ),
        _Scenario(
            label="expat newcomer",
            short="expat",
            facts=_expat_facts,
            findings=(
                _finding(
                    (
                        "a new account, {age_days} days old, paying with a card issued in {home}",
                        "a new customer who moved here {age_days} days ago still pays with their card from {home}, "
                        "hence the BIN mismatch",
                    ),
                    ("new account {age_days}d old, {home_code} card (BIN mismatch)",),
                    required=True,
                ),
                _finding(
                    (
                        "one device and one address since sign-up",
                        "nothing changed in device or address since the account was opened",
                    ),
                    ("1 device, 1 address since signup",),
                ),
                _finding(
                    (
                        "{n} gift cards ({total}) went to family in {home}",
                        "the {n} gift cards for {total} were sent home to relatives",
                    ),
                    ("{n} GCs {total} to family",),
                ),
            ),
            triggers=("a BIN-country rule", "a new-account model score"),
        ),
    ),
}

_ACTION_WORDS: dict[Action, tuple[str, str, str]] = {  # passive, active, shorthand
    Action.lock_account: ("the account was locked", "locked the account", "locked"),
    Action.step_up_verification: ("the customer was sent a re-verification", "forced a re-verification", "step-up"),
    Action.void_gift_cards: ("the gift cards were voided", "voided the gift cards", "GCs voided"),
    Action.hold_purchases: ("purchases were put on hold", "held further purchases", "purchases held"),
    Action.revoke_entitlements: ("the entitlements were revoked", "revoked the entitlements", "entitlements revoked"),
    Action.block_instrument: ("the card was blocked", "blocked the card", "card blocked"),
    Action.deny_refund: ("the pending refund was denied", "denied the pending refund", "refund denied"),
    Action.approve_refund: ("the refund was approved", "approved the refund", "refund ok"),
    Action.represent_chargeback: (
        "the chargeback was represented with the play history",
        "represented the chargeback with the login history",
        "CB represented",
    ),
    Action.escalate: ("the case went to {team}", "escalated to {team}", "esc. {team}"),
    Action.close_no_action: ("it was closed with no action", "closed it with no action", "closed, no action"),
}

_VERDICTS: dict[Disposition, tuple[tuple[str, ...], tuple[str, ...]]] = {  # full, shorthand
    Disposition.confirmed_fraud: (
        (
            "Confirmed {label}.",
            "Verdict: {short}, confirmed.",
            "This was {label}.",
            "Clear case of {label}.",
            "Textbook {label}.",
        ),
        ("conf {short}", "{short} confirmed", "{short} - fraud"),
    ),
    Disposition.false_positive: (
        (
            "False positive.",
            "Not fraud; a false positive.",
            "Legit customer.",
            "Genuine activity, false positive.",
            "Nothing fraudulent here.",
        ),
        ("FP", "legit / FP", "not fraud"),
    ),
    Disposition.inconclusive: (
        ("Inconclusive.", "Could not confirm it either way.", "Not enough to call it.", "Left as inconclusive."),
        ("inconclusive", "can't call it", "unclear"),
    ),
}


def write_narrative(rng: Random, typology: Typology, disposition: Disposition, actions: list[Action]) -> str:
    """A past-case write-up consistent with the typology, disposition and actions."""
    scenario = rng.choice(_SCENARIOS[typology])
    facts = scenario.facts(rng, _money_style(rng))
    facts["team"] = rng.choice(_TEAMS)
    findings = _pick_findings(rng, scenario, facts)
    if disposition is Disposition.inconclusive and scenario.doubts:
        doubt = rng.choice(scenario.doubts).format(**facts)
        findings.append((doubt, "but " + doubt))
    trigger = rng.choice(scenario.triggers).format(**facts)
    verdict_full, verdict_terse = (
        rng.choice(options).format(label=scenario.label, short=scenario.short) for options in _VERDICTS[disposition]
    )
    outcome = _Outcome(
        verdict=verdict_full,
        verdict_terse=verdict_terse,
        passive=_join([_ACTION_WORDS[a][0].format(**facts) for a in actions]),
        active=_join([_ACTION_WORDS[a][1].format(**facts) for a in actions]),
        terse=", ".join(_ACTION_WORDS[a][2].format(**facts) for a in actions),
    )
    draft = _Draft(
        short=scenario.short,
        trigger=trigger,
        full=[full for full, _ in findings],
        terse=[terse for _, terse in findings],
        outcome=outcome,
    )
    return rng.choice(_STYLES)(rng, draft)


def _money_style(rng: Random) -> Callable[[float], str]:
    """One way of writing money per narrative: '$100', '100 USD', 'EUR 59.99'..."""
    symbol, code = rng.choice((("$", "USD"), ("$", "USD"), ("€", "EUR"), ("£", "GBP")))
    shape = rng.randrange(3)

    def money(value: float) -> str:
        number = f"{value:.2f}".removesuffix(".00")
        if shape == 0:
            return f"{symbol}{number}"
        if shape == 1:
            return f"{number} {code}"
        return f"{code} {value:.2f}"

    return money


def _pick_findings(rng: Random, scenario: _Scenario, facts: Facts) -> list[tuple[str, str]]:
    """Required findings plus a random subset of the others, in a random order."""
    chosen = [f for f in scenario.findings if f.required or rng.random() < 0.55]
    rng.shuffle(chosen)
    return [(rng.choice(f.full).format(**facts), rng.choice(f.terse).format(**facts)) for f in chosen]


@dataclass(frozen=True, slots=True)
class _Outcome:
    verdict: str
    verdict_terse: str
    passive: str
    active: str
    terse: str


@dataclass(frozen=True, slots=True)
class _Draft:
    """What a style lays out: the findings in both registers, in their chosen order."""

    short: str
    trigger: str
    full: list[str]
    terse: list[str]
    outcome: _Outcome


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _shorthand(rng: Random, draft: _Draft) -> str:
    short = draft.short
    head = rng.choice((f"{short}: ", f"[{short}] ", "", f"re {draft.trigger}: ", f"{short} - "))
    body = rng.choice(("; ", ". ", " / ", ", ")).join(draft.terse)
    return f"{head}{body}. {draft.outcome.verdict_terse}{rng.choice((' - ', '. ', ' => '))}{draft.outcome.terse}."


def _paragraph(rng: Random, draft: _Draft) -> str:
    """Third person and passive voice, findings joined by connectors."""
    trigger, outcome = draft.trigger, draft.outcome
    opening = rng.choice(
        (
            f"The alert came from {trigger}.",
            f"Flagged by {trigger}.",
            f"This case was opened on {trigger}.",
            f"Review started after {trigger}.",
            f"Account came into the queue via {trigger}.",
        )
    )
    connectors = ("", "", "Then ", "After that, ", "On top of that, ", "Also, ", "In addition, ")
    sentences = [_cap((rng.choice(connectors) if i else "") + full) + "." for i, full in enumerate(draft.full)]
    closing = rng.choice(
        (
            f"{outcome.verdict} {_cap(outcome.passive)}.",
            f"{_cap(outcome.passive)}. {outcome.verdict}",
            f"Outcome: {outcome.passive}. {outcome.verdict}",
        )
    )
    return " ".join([opening, *sentences, closing])


def _first_person(rng: Random, draft: _Draft) -> str:
    trigger, outcome = draft.trigger, draft.outcome
    opening = rng.choice(
        (
            f"I picked this up from {trigger}.",
            f"Took this one after {trigger}.",
            f"I reviewed the account after {trigger}.",
            f"Mine from the queue ({trigger}).",
        )
    )
    frames = ("I saw that {}.", "Looking at the history, {}.", "{}.", "I noticed {}.", "Checked the events: {}.")
    sentences = [_cap(rng.choice(frames).format(full)) for full in draft.full]
    closing = rng.choice(
        (
            f"I {outcome.active}. {outcome.verdict}",
            f"{outcome.verdict} I {outcome.active}.",
            f"My call: {outcome.verdict.lower()} I {outcome.active}.",
        )
    )
    return " ".join([opening, *sentences, closing])


def _timeline(rng: Random, draft: _Draft) -> str:
    title = rng.choice(("Timeline", "Sequence", "What happened", "Events"))
    bullet = rng.choice(("- ", "* ", "numbered"))
    items = draft.terse if rng.random() < 0.4 else draft.full
    if bullet == "numbered":
        lines = [f"{i}) {item}" for i, item in enumerate(items, start=1)]
    else:
        lines = [bullet + item for item in items]
    body = " " + "; ".join(items) + "." if rng.random() < 0.3 else "\n" + "\n".join(lines)
    result = rng.choice(("Outcome", "Result", "Resolution"))
    return f"{title}:{body}\n{result}: {draft.outcome.verdict} {_cap(draft.outcome.passive)}."


def _fields(rng: Random, draft: _Draft) -> str:
    """Ticket-style labelled fields, on separate lines or pipe-separated."""
    names = rng.choice(
        (
            ("Trigger", "Evidence", "Decision", "Actions"),
            ("Signal", "Findings", "Call", "Action taken"),
            ("Source", "Notes", "Verdict", "Done"),
        )
    )
    values = (draft.trigger, "; ".join(draft.terse), draft.outcome.verdict_terse, draft.outcome.terse)
    return rng.choice(("\n", " | ")).join(f"{name}: {value}" for name, value in zip(names, values, strict=True))


def _verdict_first(rng: Random, draft: _Draft) -> str:
    because = rng.choice(("Evidence: ", "Basis: ", "Why: ", ""))
    reasons = _cap(_join(draft.full))
    return f"{draft.outcome.verdict} {because}{reasons}. Opened on {draft.trigger}; {draft.outcome.passive}."


def _latest_first(rng: Random, draft: _Draft) -> str:
    """The outcome, then the evidence in reverse order, ending where the case began."""
    listed = " ".join(_cap(full) + "." for full in reversed(draft.full))
    lead = rng.choice(("Outcome first", "Short version", "Bottom line"))
    back = rng.choice(("Working back from the end", "In reverse order", "Latest first"))
    return (
        f"{lead}: {draft.outcome.passive}. {draft.outcome.verdict} "
        f"{back}: {listed} It all started with {draft.trigger}."
    )


def _questions(rng: Random, draft: _Draft) -> str:
    asked = rng.choice(
        (
            ("Why flagged?", "What did we find?", "Call?"),
            ("Why here:", "What we found:", "Decision:"),
            ("Q: why?", "Q: evidence?", "Q: outcome?"),
        )
    )
    found = _cap(_join(draft.full))
    outcome = f"{draft.outcome.verdict} {_cap(draft.outcome.passive)}."
    return f"{asked[0]} {_cap(draft.trigger)}. {asked[1]} {found}. {asked[2]} {outcome}"


_STYLES: tuple[Callable[[Random, _Draft], str], ...] = (
    _shorthand,
    _shorthand,
    _paragraph,
    _paragraph,
    _first_person,
    _timeline,
    _fields,
    _verdict_first,
    _latest_first,
    _questions,
)
