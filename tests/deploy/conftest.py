"""The deploy tests run the production topology against the Kafka tests' Tansu broker."""

from tests.integration.kafka.conftest import broker  # noqa: F401 - the fixture, shared
