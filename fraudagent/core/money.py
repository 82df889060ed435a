"""Currencies: fixed rates to US dollars, so amounts compare across currencies and simulated prices are reproducible."""

from __future__ import annotations

from decimal import Decimal

# Units of each currency per US dollar; fixed so prices are reproducible.
USD_RATES: dict[str, float] = {
    "USD": 1.0,
    "CAD": 1.36,
    "GBP": 0.79,
    "EUR": 0.92,
    "SEK": 10.5,
    "PLN": 4.0,
    "BRL": 5.0,
    "MXN": 17.0,
    "AUD": 1.52,
    "JPY": 150.0,
}
WHOLE_UNIT_CURRENCIES = frozenset({"JPY"})


def usd_value(amount: str, currency: str) -> float:
    """Approximate US dollar value of an amount, for currency-independent comparisons."""
    return float(Decimal(amount)) / USD_RATES.get(currency, 1.0)
