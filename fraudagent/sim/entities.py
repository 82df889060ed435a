"""The things events refer to: devices, networks, payment instruments, and who owns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from random import Random

from fraudagent.core.models import Account
from fraudagent.sim.catalog import IP_PREFIXES, Market


class DeviceKind(StrEnum):
    console = "console"
    pc = "pc"
    phone = "phone"


# The kind is part of the id so that evidence shows "a new console" at a glance.
_DEVICE_ID_PREFIX = {DeviceKind.console: "D-CON", DeviceKind.pc: "D-PC", DeviceKind.phone: "D-MOB"}


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    kind: DeviceKind


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument_id: str
    instrument_type: str  # card, paypal or wallet (a tokenised phone wallet)
    bin_country: str | None  # issuing country of a card; None for the other types


@dataclass(frozen=True, slots=True)
class Access:
    """Where an action comes from: the device and the network address it used."""

    device: Device
    ip: str
    ip_country: str


@dataclass(slots=True)
class Profile:
    """An account plus the devices, addresses and instruments it normally uses."""

    account: Account
    market: Market
    devices: list[Device]
    home_ips: list[str]
    home_country: str  # where home_ips are: the market's country, or a fraudster's real location
    instruments: list[Instrument]
    sessions_per_day: float
    acquired: dict[str, datetime] = field(default_factory=dict)  # device_id -> first day it is used

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def currency(self) -> str:
        return self.market.currency

    def add_device(self, device: Device, since: datetime) -> None:
        """Give the account a device it starts using at `since`."""
        self.devices.append(device)
        self.acquired[device.device_id] = since

    def devices_at(self, ts: datetime) -> list[Device]:
        return [d for d in self.devices if self.acquired.get(d.device_id, ts) <= ts]

    def home_access(self, rng: Random, ts: datetime) -> Access:
        """A session at `ts` from one of the account's own devices on its home network."""
        devices = self.devices_at(ts)
        device = rng.choices(devices, weights=_device_weights(devices))[0]
        return Access(device, rng.choice(self.home_ips), self.home_country)

    def card(self) -> Instrument:
        """The instrument the account pays with by default."""
        return self.instruments[0]


def _device_weights(devices: list[Device]) -> list[float]:
    # Consoles carry most play; phones are mostly for the store app.
    return [{DeviceKind.console: 5.0, DeviceKind.pc: 3.0, DeviceKind.phone: 1.5}[d.kind] for d in devices]


class IdMint:
    """Issues the ids of one world, each series counting up from 1."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def _next(self, series: str) -> int:
        self._counters[series] = self._counters.get(series, 0) + 1
        return self._counters[series]

    def device(self, kind: DeviceKind) -> Device:
        return Device(f"{_DEVICE_ID_PREFIX[kind]}-{self._next('device'):05d}", kind)

    def instrument(self, instrument_type: str, bin_country: str | None) -> Instrument:
        return Instrument(f"PI-{self._next('instrument'):06d}", instrument_type, bin_country)

    def card(self, bin_country: str) -> Instrument:
        return self.instrument("card", bin_country)


def public_ip(rng: Random, country: str) -> str:
    """A public IPv4 address from the country's blocks (see catalog.IP_PREFIXES)."""
    first, second = rng.choice(IP_PREFIXES[country])
    return f"{first}.{second}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
