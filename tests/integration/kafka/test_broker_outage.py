"""The Kafka adapters against a broker that goes away under them (Tansu, stopped): an
offset commit after a stored batch must not take the consumer down."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import time

from infra.bench.broker import tansu_broker
from infra.kafka_io import KafkaMessageSource
from infra.settings import Settings
from tests.integration.kafka.conftest import KafkaWorld, our_tracebacks


def test_an_offset_commit_the_broker_does_not_answer_is_logged_not_raised(tmp_path, caplog):
    broker = contextlib.ExitStack()
    bootstrap = broker.enter_context(tansu_broker())
    try:
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                            kafka_bootstrap=bootstrap, kafka_session_timeout_ms=2000,
                            kafka_heartbeat_interval_ms=500)
        world = KafkaWorld(settings, bootstrap, tmp_path)
        assert world.cli("topics", "create", "--partitions", "2").returncode == 0
        world.produce([(None, b"one"), (None, b"two")])
        source = KafkaMessageSource(settings, "outage-test")
        messages = []
        deadline = time.monotonic() + 30
        while len(messages) < 2:  # joins the group, then fetches
            assert time.monotonic() < deadline, "the consumer got no messages"
            messages += source.poll()
        broker.close()  # the broker goes away after the batch was handled

        with caplog.at_level(logging.WARNING, logger="studyledger.kafka"):
            source.commit({(m.topic, m.partition): m.offset + 1 for m in messages})
        assert any("offset commit failed, the broker did not answer" in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
        source.close()
    finally:
        broker.close()


def test_consume_rides_out_a_broker_restart_and_stores_what_comes_after(tmp_path):
    """`consume` as a process; the broker stopped under it and started again on its port,
    empty (Tansu keeps topics and offsets in memory). The process stays up and stores the
    facts produced to the new broker."""
    from tests.integration.kafka.test_consume_and_relay import (
        assert_each_learner_holds,
        fact_message,
        learner_facts,
        record_orgs,
        stored_count,
        wait_for,
    )

    broker = contextlib.ExitStack()
    bootstrap = broker.enter_context(tansu_broker())
    port = int(bootstrap.rsplit(":", 1)[1])
    world = KafkaWorld(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"),
                       bootstrap, tmp_path)
    consume = None
    try:
        assert world.cli("topics", "create", "--partitions", "2").returncode == 0
        orgs = record_orgs(world)
        before, after = learner_facts(10), learner_facts(10, prefix="M")
        world.produce([fact_message(f) for f in before])
        consume = world.start("consume")
        wait_for(lambda: stored_count(world) == orgs + len(before), what="the first facts")
        broker.close()  # the broker goes away, with its topics and the group's offsets
        time.sleep(1)  # a poll or two against no broker (not needed for what is checked)
        # Frozen while the broker comes back: Tansu comes back without topics, and a group
        # assignment made before they are created again assigns nothing (a real Kafka keeps
        # its topics). Resumed, the consumer finds its connections and its group gone.
        consume.send_signal(signal.SIGSTOP)
        with tansu_broker(port):
            assert world.cli("topics", "create", "--partitions", "2").returncode == 0
            world.produce([fact_message(f) for f in after])
            consume.send_signal(signal.SIGCONT)
            wait_for(lambda: consume.poll() is not None
                     or stored_count(world) == orgs + len(before) + len(after),
                     what="the facts sent after the restart")
            assert consume.poll() is None, consume.log_path.read_text()  # still up
            consume.terminate()
            assert consume.wait(timeout=30) == 0, consume.log_path.read_text()
    finally:
        if consume is not None and consume.poll() is None:
            consume.kill()
        broker.close()
        if consume is not None:  # shown when the test fails
            print(f"--- consume log ---\n{_studyledger_lines(consume.log_path.read_text())}")
    log = consume.log_path.read_text()
    assert not our_tracebacks(log) and "error:" not in log, log
    assert_each_learner_holds(world, before + after)


def _studyledger_lines(log: str) -> str:
    """The log without the Kafka client's chatter about connections and the periodic
    reports: what the consumer group and this project said."""
    lines = [line for line in log.splitlines()
             if not re.search(r" kafka\.(net|cluster|producer|protocol)", line)
             and not re.search(r"consume consumed \d+ \(", line)]  # the periodic reports
    return "\n".join(lines)[-6000:]


def test_dead_letters_wait_for_a_broker_that_goes_away_before_they_are_sent(tmp_path, caplog):
    """The loop in this process against Tansu: the broker is stopped right after the batch
    is stored (the named fault point before the dead letters), and started again on its
    port two seconds later. The loop waits, sends the letter to the broker that came back,
    and only then commits."""
    import threading

    from consumers.fault_points import CONSUME_AFTER_STORE_COMMIT
    from infra.bootstrap import build_ingest
    from infra.kafka_io import read_dead_letters

    first = contextlib.ExitStack()
    second = contextlib.ExitStack()
    bootstrap = first.enter_context(tansu_broker())
    port = int(bootstrap.rsplit(":", 1)[1])
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                        kafka_bootstrap=bootstrap, kafka_session_timeout_ms=2000,
                        kafka_heartbeat_interval_ms=500, kafka_publish_timeout_seconds=2,
                        kafka_validate_workers=0)
    world = KafkaWorld(settings, bootstrap, tmp_path)
    restarted = threading.Event()

    def restart_later() -> None:
        time.sleep(2)
        second.enter_context(tansu_broker(port))  # empty: Tansu keeps topics in memory
        restarted.set()
        assert world.cli("topics", "create", "--partitions", "1").returncode == 0

    restarter = threading.Thread(target=restart_later)

    def broker_goes_away(point: str) -> None:
        if point == CONSUME_AFTER_STORE_COMMIT and not restarter.ident:  # the first time
            first.close()
            restarter.start()

    ingest = None
    try:
        assert world.cli("topics", "create", "--partitions", "1").returncode == 0
        world.produce([(None, b"not json")])
        ingest = build_ingest(settings)
        ingest.loop.fault_point = broker_goes_away
        deadline = time.monotonic() + 60
        with caplog.at_level(logging.WARNING, logger="studyledger.consume"):
            while not ingest.loop.run_batch():  # joins the group, then fetches
                assert time.monotonic() < deadline, "the consumer got no message"
        assert restarted.is_set()  # the letter went to the broker that came back
        restarter.join(timeout=60)
        letters = read_dead_letters(settings, "outage-test")
        assert [letter.value for letter in letters] == [b"not json"]
        messages = [r.getMessage() for r in caplog.records]
        assert sum("consume waits for it" in m for m in messages) == 1, messages
        assert any("takes dead letters again" in m for m in messages), messages
        assert ingest.loop.stats.dead_lettered == 1
        assert not our_tracebacks(caplog.text)
    finally:
        if ingest is not None:
            ingest.close()
        if restarter.is_alive():
            restarter.join(timeout=60)
        first.close()
        second.close()


def test_consume_and_relay_started_before_the_broker_wait_for_it(tmp_path):
    """Both say they wait for the broker and stay up; each is frozen (SIGSTOP) while the
    broker starts and its topics are made, and resumed: consume stores what was produced,
    the relay publishes what was recorded."""
    from infra.bench.broker import free_port
    from infra.store.relay_position import RelayPositionStore
    from tests.integration.kafka.test_consume_and_relay import (
        fact_message,
        learner_facts,
        record_orgs,
        stored_count,
        wait_for,
    )

    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    world = KafkaWorld(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"),
                       bootstrap, tmp_path)
    orgs = record_orgs(world)
    processes = {name: world.start(name) for name in ("consume", "relay")}
    try:
        for name, process in processes.items():
            wait_for(lambda p=process: p.poll() is not None
                     or "the broker does not answer" in p.log_path.read_text(),
                     what=f"{name} saying it waits for the broker")
            assert process.poll() is None, process.log_path.read_text()
            process.send_signal(signal.SIGSTOP)
        with tansu_broker(port):
            assert world.cli("topics", "create", "--partitions", "2").returncode == 0
            facts = learner_facts(5)
            world.produce([fact_message(f) for f in facts])
            for process in processes.values():
                process.send_signal(signal.SIGCONT)
            wait_for(lambda: processes["consume"].poll() is not None
                     or stored_count(world) == orgs + len(facts), what="consume storing")
            positions = RelayPositionStore(world.settings, world.settings.kafka_topic_recorded)
            wait_for(lambda: processes["relay"].poll() is not None
                     or positions.position() == orgs + len(facts), what="the relay publishing")
            positions.close()
            for process in processes.values():
                assert process.poll() is None, process.log_path.read_text()
                process.terminate()
            for process in processes.values():
                assert process.wait(timeout=30) == 0, process.log_path.read_text()
    finally:
        for name, process in processes.items():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
            print(f"--- {name} log ---\n{_studyledger_lines(process.log_path.read_text())}")
    for process in processes.values():
        log = process.log_path.read_text()
        assert "the broker answers after" in log, log
        assert not our_tracebacks(log) and "error:" not in log, log
