"""The deploy tests run the production topology against the Kafka tests' Tansu broker."""

from tests.kafka.conftest import broker  # noqa: F401 - the fixture, shared
