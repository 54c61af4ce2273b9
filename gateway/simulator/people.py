"""Made-up consignees for simulated orders (obviously fake; never real personal data)."""

from __future__ import annotations

import random
from typing import Final

from gateway.simulator.entities import Consignee

_FIRST: Final = ("Alex", "Sam", "Robin", "Kim", "Jo", "Charlie", "Max", "Lee", "Noor", "Ira")
_LAST: Final = ("Example", "Sample", "Tester", "Placeholder", "Demo", "Fictive", "Mock")
_PLACES: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    # country -> (city, postcode, province/state)
    "GB": (("London", "E1 6AN", ""), ("Leeds", "LS1 4AP", ""), ("Bristol", "BS1 5TR", "")),
    "DE": (("Berlin", "10115", "BE"), ("Hamburg", "20095", "HH"), ("Köln", "50667", "NW")),
    "US": (("Springfield", "62701", "IL"), ("Portland", "97201", "OR"), ("Austin", "73301", "TX")),
    "AU": (("Sydney", "2000", "NSW"), ("Melbourne", "3000", "VIC"), ("Perth", "6000", "WA")),
}
_STREETS: Final = ("Example Street", "Sample Road", "Test Lane", "Demo Avenue", "Mock Way")


def consignee(rng: random.Random, country: str) -> Consignee:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, zip_code, province = rng.choice(_PLACES.get(country, _PLACES["GB"]))
    house = str(rng.randint(1, 250))
    return Consignee(
        name=f"{first} {last}",
        address1=f"{house} {rng.choice(_STREETS)}",
        house_number=house,
        city=city,
        zip_code=zip_code,
        province_or_state=province,
        country_code=country,
        phone=f"+00 555 {rng.randint(100000, 999999)}",
        email=f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.invalid",
        company="Example Ltd" if rng.random() < 0.1 else "",
    )
