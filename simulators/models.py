"""The device model for each family, picked by the site's family."""

from __future__ import annotations

from domain.config import Site
from domain.district import District
from simulators.crowd_venue import CrowdVenueModel
from simulators.gas_station import GasStationModel
from simulators.model import SiteModel, site_rng
from simulators.underground import UndergroundModel

MODEL_CLASSES: dict[str, type[SiteModel]] = {
    m.family: m for m in (GasStationModel, CrowdVenueModel, UndergroundModel)
}


def build_model(site: Site, district: District, seed: int | None) -> SiteModel:
    """The model of ``site``, with its own random stream derived from ``seed`` and the site id."""
    return MODEL_CLASSES[site.family](site, district, site_rng(seed, site.id))


def device_ids(family: str) -> tuple[str, ...]:
    return tuple(MODEL_CLASSES[family].devices)
