"""Which encoder a run trains: the configured one when it can be had, else the configured fallback."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from train.config import Config
from train.modeling import e5
from train.modeling.encoders import encoder_spec
from train.modeling.hub import ModelUnavailableError, hub_offline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderChoice:
    """What the run directory's encoder.json says: the encoder used, the one asked for, and why they differ."""

    encoder: str
    name_or_path: str
    requested: str
    reason: str
    provenance: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fallback_model(config: Config) -> Config:
    """The config with its model switched to the fallback encoder, every other setting kept."""
    return dataclasses.replace(config, model=dataclasses.replace(
        config.model, encoder=config.model.fallback, name_or_path=e5.BASE_MODEL, random_init=False))


def choose_encoder(config: Config) -> tuple[Config, EncoderChoice]:
    """(the config the run trains with, the record of that choice). Raises when neither encoder can be had."""
    m = config.model
    requested = f"{m.encoder} {m.name_or_path}" if m.encoder != "embedded-e5" else m.encoder
    try:
        encoder_spec(m.encoder).check_available(m)
        reason = "as configured"
    except ModelUnavailableError:
        if m.fallback == "none":
            raise
        config = fallback_model(config)
        encoder_spec(config.model.encoder).check_available(config.model)
        hub = "switched off (HF_HUB_OFFLINE)" if hub_offline() else "unreachable"
        reason = f"{m.name_or_path} is not in the local cache and the Hub is {hub}: model.fallback={m.fallback}"
        logger.warning("%s is neither cached nor downloadable: training on the embedded %s instead "
                       "(model.fallback=none stops instead)", m.name_or_path, e5.BASE_MODEL)
    spec = encoder_spec(config.model.encoder)
    return config, EncoderChoice(encoder=config.model.encoder, name_or_path=spec.recorded_name(config.model),
                                 requested=requested, reason=reason, provenance=spec.provenance(config.model))
