"""Fail fast, in one line, for a Hugging Face model id that cannot be had: not cached, and the hub offline.

Without this check `from_pretrained` retries an unreachable hub for most of a minute and logs a page of warnings.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from genemask.errors import UserError

HUB_TIMEOUT_SECONDS = 3.0


def _offline() -> bool:
    return any(
        os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def in_hub_cache(model_id: str) -> bool:
    """Whether the Hugging Face cache holds `model_id`'s config.json."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except (ValueError, OSError):
        return False


def hub_reachable(timeout: float = HUB_TIMEOUT_SECONDS) -> bool:
    """Whether a TCP connection to the hub (HF_ENDPOINT, default huggingface.co) opens within `timeout` s."""
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def check_hub_model(model_id: str, option: str = "--model") -> None:
    """Refuse a hub id that is neither cached nor downloadable now (offline mode set, or the hub unreachable)."""
    if in_hub_cache(model_id):
        return
    if _offline():
        why = "HF_HUB_OFFLINE is set"
    elif not hub_reachable():
        why = "the Hugging Face hub is unreachable"
    else:
        return
    raise UserError(
        f"{option} {model_id}: not a local directory and not in the Hugging Face cache, and {why}; "
        f"download it where the hub is reachable, or give a local model directory"
    )
