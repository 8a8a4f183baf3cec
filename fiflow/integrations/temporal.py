"""Connecting to Temporal the same way everywhere: envconfig, pydantic, codec, tracing."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from temporalio.client import Client
from temporalio.common import HeaderCodecBehavior
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from fiflow.integrations.codec import EncryptionCodec, KeyRing, KeyRingError, read_key_file
from fiflow.integrations.settings import Settings

DEFAULT_TARGET = "127.0.0.1:7233"


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    """The encryption codec from the configured key ring; None only when turned off."""
    if not settings.payload_encryption:
        return None
    if settings.payload_keys is not None:
        spec = settings.payload_keys.get_secret_value()
    elif settings.payload_key_file.exists():
        spec = read_key_file(settings.payload_key_file)
    else:
        raise KeyRingError(
            "payload encryption is on but no key is configured: set FIFLOW_PAYLOAD_KEYS, or "
            f"FIFLOW_PAYLOAD_KEY_FILE (now {settings.payload_key_file}; `fiflow up` creates "
            "one in its state directory), or FIFLOW_PAYLOAD_ENCRYPTION=false"
        )
    return EncryptionCodec(KeyRing.parse(spec))


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic converter; payloads, failure messages and stack traces are encrypted."""
    codec = payload_codec(settings)
    if codec is None:
        return pydantic_data_converter
    # Failure messages and stack traces often quote inputs: move them into the encoded
    # attributes so the server stores only "Encoded failure".
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


@lru_cache
def _runtime(metrics_address: str | None) -> Runtime | None:
    """The SDK runtime with a Prometheus endpoint (one per process: it owns the port)."""
    if not metrics_address:
        return None
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_address))
    )


async def connect(settings: Settings) -> Client:
    """A client from Temporal's standard environment config (TEMPORAL_ADDRESS, TLS, API key...)."""
    config = dict(ClientConfigProfile.load().to_client_connect_config())
    target = str(config.pop("target_host", None) or DEFAULT_TARGET)
    runtime = _runtime(settings.metrics_address)
    if runtime is not None:
        config["runtime"] = runtime
    return await Client.connect(
        target,
        **config,  # type: ignore[arg-type]
        data_converter=data_converter(settings),
        # Headers (the tracing context) go through the codec too: nothing leaves in clear
        # but IDs and search attributes.
        header_codec_behavior=HeaderCodecBehavior.CODEC,
        interceptors=[TracingInterceptor()],
    )
