"""Reference data of the simulated store: markets, prices, products, the sale calendar.

Everything here is constant; randomness lives in the generators that draw from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fraudagent.core.money import USD_RATES, WHOLE_UNIT_CURRENCIES


@dataclass(frozen=True, slots=True)
class Market:
    """A country the store sells in, with what its customers look like."""

    country: str
    weight: float  # share of the customer base
    currency: str
    utc_offset: int  # hours; play peaks in the local evening
    email_domains: tuple[str, ...]


# Public address blocks per country. Deliberately outside every private,
# shared, loopback, link-local, documentation and multicast range, so each
# address reads like a real customer connection.
IP_PREFIXES: dict[str, tuple[tuple[int, int], ...]] = {
    "US": ((24, 16), (50, 35), (66, 87), (71, 190), (73, 14), (98, 210)),
    "CA": ((24, 114), (70, 48), (99, 230)),
    "GB": ((81, 98), (86, 150), (92, 40)),
    "IE": ((78, 16), (89, 101)),
    "DE": ((84, 56), (91, 64), (93, 200)),
    "FR": ((82, 64), (90, 3), (109, 8)),
    "ES": ((83, 44), (88, 27)),
    "IT": ((79, 24), (87, 11)),
    "NL": ((77, 160), (85, 144)),
    "SE": ((78, 69), (94, 254)),
    "PL": ((83, 6), (89, 64)),
    "BR": ((177, 32), (187, 10), (189, 6)),
    "MX": ((187, 140), (189, 203)),
    "AU": ((101, 160), (121, 200)),
    "JP": ((118, 6), (126, 72)),
    "RO": ((86, 120), (188, 24)),
    "VN": ((113, 160), (171, 224)),
    "ID": ((36, 68), (114, 124)),
    "UA": ((46, 200), (178, 150)),
    "NG": ((102, 88), (105, 112)),
    "PH": ((112, 198), (124, 104)),
    "TR": ((78, 170), (88, 230)),
    "RU": ((95, 24), (178, 64)),
    "IN": ((49, 36), (117, 96)),
    "TH": ((49, 228), (171, 96)),
}

MARKETS: tuple[Market, ...] = (
    Market("US", 0.42, "USD", -5, ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com", "comcast.net")),
    Market("CA", 0.06, "CAD", -5, ("gmail.com", "outlook.com", "shaw.ca", "icloud.com")),
    Market("GB", 0.10, "GBP", 0, ("gmail.com", "hotmail.co.uk", "btinternet.com", "outlook.com")),
    Market("IE", 0.02, "EUR", 0, ("gmail.com", "eircom.net", "outlook.com")),
    Market("DE", 0.08, "EUR", 1, ("gmx.de", "web.de", "gmail.com", "t-online.de")),
    Market("FR", 0.06, "EUR", 1, ("orange.fr", "gmail.com", "free.fr", "laposte.net")),
    Market("ES", 0.03, "EUR", 1, ("gmail.com", "hotmail.es", "telefonica.net")),
    Market("IT", 0.03, "EUR", 1, ("libero.it", "gmail.com", "virgilio.it")),
    Market("NL", 0.02, "EUR", 1, ("gmail.com", "ziggo.nl", "kpnmail.nl")),
    Market("SE", 0.02, "SEK", 1, ("gmail.com", "telia.com", "outlook.com")),
    Market("PL", 0.03, "PLN", 1, ("wp.pl", "onet.pl", "gmail.com")),
    Market("BR", 0.05, "BRL", -3, ("gmail.com", "uol.com.br", "bol.com.br", "hotmail.com")),
    Market("MX", 0.03, "MXN", -6, ("gmail.com", "hotmail.com", "prodigy.net.mx")),
    Market("AU", 0.03, "AUD", 10, ("gmail.com", "bigpond.com", "outlook.com")),
    Market("JP", 0.02, "JPY", 9, ("yahoo.co.jp", "gmail.com", "docomo.ne.jp")),
)
MARKET_BY_COUNTRY: dict[str, Market] = {market.country: market for market in MARKETS}

# Where account takeovers, stolen cards and rings connect from in this store's
# history. Only the IP country matters to the evidence.
FRAUD_ORIGINS: tuple[str, ...] = ("RO", "VN", "ID", "UA", "NG", "PH", "TR", "RU", "IN", "TH", "BR")

# Where customers of each market travel to (holidays, work trips).
TRAVEL_DESTINATIONS: dict[str, tuple[str, ...]] = {
    "US": ("MX", "CA", "GB", "JP", "FR", "IT"),
    "CA": ("US", "MX", "FR"),
    "GB": ("ES", "FR", "IT", "US", "NL"),
    "IE": ("GB", "ES", "FR"),
    "DE": ("ES", "IT", "NL", "FR", "TH"),
    "FR": ("ES", "IT", "GB", "DE"),
    "ES": ("FR", "GB", "IT"),
    "IT": ("FR", "DE", "ES"),
    "NL": ("DE", "ES", "FR"),
    "SE": ("ES", "DE", "TH"),
    "PL": ("DE", "GB", "IT"),
    "BR": ("US", "MX", "ES"),
    "MX": ("US", "ES"),
    "AU": ("JP", "TH", "US", "ID"),
    "JP": ("US", "AU", "TH"),
}

DISPOSABLE_EMAIL_DOMAINS: tuple[str, ...] = (
    "tempmail.dev",
    "mailbox-drop.net",
    "quickinbox.io",
    "burnermail.top",
    "proton.me",
)


def local_price(usd: float, currency: str) -> str:
    """Shelf price in the account's currency: psychological '.99' endings, whole yen."""
    value = usd * USD_RATES[currency]
    if currency in WHOLE_UNIT_CURRENCIES:
        return str(max(10, round(value / 10) * 10))
    if value < 1:
        return f"{value:.2f}"
    return f"{math.floor(value) + 0.99:.2f}"


def face_value(usd: int, currency: str) -> str:
    """Face value of a gift card or top-up: a round number in the local currency."""
    value = usd * USD_RATES[currency]
    step = 1000 if currency in WHOLE_UNIT_CURRENCIES else (50 if value >= 200 else 5)
    rounded = max(step, round(value / step) * step)
    return str(rounded) if currency in WHOLE_UNIT_CURRENCIES else f"{rounded}.00"


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    category: str
    usd: float
    face_usd: int = 0  # gift cards and top-ups: the denomination in dollars


_GAME_PRICES = (59.99, 69.99, 39.99, 29.99, 19.99, 49.99, 14.99, 24.99, 9.99)
_DLC_PRICES = (4.99, 9.99, 14.99, 19.99, 24.99, 7.99)

GAMES: tuple[Product, ...] = tuple(
    Product(f"GAME-{i:04d}", "game", _GAME_PRICES[(i * 7) % len(_GAME_PRICES)]) for i in range(1, 301)
)
DLC: tuple[Product, ...] = tuple(
    Product(f"DLC-{i:04d}", "dlc", _DLC_PRICES[(i * 5) % len(_DLC_PRICES)]) for i in range(1, 151)
)
CURRENCY_PACKS: tuple[Product, ...] = (
    Product("VC-500", "virtual_currency", 4.99),
    Product("VC-1100", "virtual_currency", 9.99),
    Product("VC-2400", "virtual_currency", 19.99),
    Product("VC-6500", "virtual_currency", 49.99),
    Product("VC-14000", "virtual_currency", 99.99),
)
GIFT_CARDS: tuple[Product, ...] = tuple(
    Product(f"GC-{face:03d}", "gift_card", float(face), face) for face in (10, 25, 50, 100)
)
TOP_UPS: tuple[Product, ...] = tuple(
    Product(f"WT-{face:03d}", "wallet", float(face), face) for face in (5, 10, 20, 50, 100)
)
SUBSCRIPTIONS: dict[str, Product] = {
    "plus": Product("SUB-PLUS-1M", "subscription", 9.99),
    "premium": Product("SUB-PREMIUM-1M", "subscription", 16.99),
}
TRIAL = Product("SUB-PLUS-TRIAL", "subscription", 0.0)
FIRST_PURCHASE_DISCOUNT = 0.5  # new accounts get 50% off one game
FIRST_PURCHASE_SUFFIX = "-FIRST50"
TEST_CHARGE = Product("VC-100", "virtual_currency", 0.99)  # smallest item: what card testers buy


def first_purchase_offer(game: Product) -> Product:
    """The discounted first-purchase variant of a game, as its own SKU."""
    return Product(game.sku + FIRST_PURCHASE_SUFFIX, game.category, round(game.usd * FIRST_PURCHASE_DISCOUNT, 2))


@dataclass(frozen=True, slots=True)
class Sale:
    name: str
    month: int
    day: int
    days: int


# Store-wide sales; gift-card purchases and spending spike during them.
SALES: tuple[Sale, ...] = (
    Sale("Lunar New Year Sale", 1, 28, 6),
    Sale("Spring Sale", 3, 14, 7),
    Sale("Golden Week Deals", 4, 29, 6),
    Sale("Days of Play", 6, 2, 10),
    Sale("Summer Sale", 6, 25, 14),
    Sale("Back to School", 8, 20, 7),
    Sale("Anniversary Sale", 9, 24, 5),
    Sale("Halloween Sale", 10, 27, 6),
    Sale("Black Friday Week", 11, 20, 10),
    Sale("Winter Sale", 12, 18, 16),
)


def sale_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The sale periods overlapping [start, end), clipped to it, in time order."""
    windows: list[tuple[datetime, datetime]] = []
    for year in range(start.year, end.year + 1):
        for sale in SALES:
            opens = datetime(year, sale.month, sale.day, tzinfo=timezone.utc)
            closes = opens + timedelta(days=sale.days)
            if closes > start and opens < end:
                windows.append((max(opens, start), min(closes, end)))
    return sorted(windows)
