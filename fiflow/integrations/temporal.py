"""Connecting to Temporal the same way everywhere: envconfig, pydantic, codec, tracing."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile

from fiflow.integrations.codec import EncryptionCodec, decode_key
from fiflow.integrations.settings import Settings

DEFAULT_TARGET = "127.0.0.1:7233"


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic converter, wrapped by the encryption codec when a key is set."""
    if not settings.payload_key:
        return pydantic_data_converter
    codec = EncryptionCodec(decode_key(settings.payload_key))
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def connect(settings: Settings) -> Client:
    """A client from Temporal's standard environment config (TEMPORAL_ADDRESS, TLS, API key...)."""
    config = dict(ClientConfigProfile.load().to_client_connect_config())
    target = str(config.pop("target_host", None) or DEFAULT_TARGET)
    return await Client.connect(
        target,
        **config,  # type: ignore[arg-type]
        data_converter=data_converter(settings),
        interceptors=[TracingInterceptor()],
    )
