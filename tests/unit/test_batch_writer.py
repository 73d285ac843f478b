"""The batch writer without a broker or database: batch sizes, ack order and grouping, database outages."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime

import pytest
from sqlalchemy.exc import OperationalError

from protocol.events import MAX_ACK_IDS, parse_ack
from protocol.topics import acks_topic, events_topic
from server.config import ServerSettings
from server.ingest import Message, Outcome
from server.ingest_writer import BatchWriter, Pending
from server.mqtt_ingest import session_identity
from tests.support.services import wait_for

NOW = datetime(2026, 11, 24, 8, 0)


class FakeIngestor:
    """Acks every message as a stored event of the device its topic names; can pretend the database is down."""

    def __init__(self, down_for: int = 0):
        self.batches: list[int] = []
        self.down_for = down_for
        self.lock = threading.Lock()

    def handle_batch(self, messages):
        with self.lock:
            if self.down_for:
                self.down_for -= 1
                raise OperationalError("INSERT", {}, Exception("connection refused"))
            self.batches.append(len(messages))
        return [self._outcome(m) for m in messages]

    @staticmethod
    def _outcome(message: Message) -> Outcome:
        _root, _v, site, device, _kind = message.topic.split("/")
        return Outcome(
            kind="events", stored=True, site_id=site, device_id=device, ack_event_id=message.payload.decode()
        )


class Recorder:
    def __init__(self):
        self.log: list[tuple[str, object]] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self.log.append(("publish", (topic, parse_ack(payload))))

    def ack(self, batch: list[Pending]) -> None:
        self.log += [("ack", pending.mid) for pending in batch]

    def acks(self) -> list[int]:
        return [mid for kind, mid in self.log if kind == "ack"]

    def published(self) -> list[tuple[str, list[str]]]:
        return [item for kind, item in self.log if kind == "publish"]


def pending(mid: int, device: str = "gate-1") -> Pending:
    message = Message(events_topic("site-a", device), str(uuid.uuid4()).encode(), NOW)
    return Pending(message, mid, 1, 1)


@pytest.fixture
def make_writer():
    writers = []

    def make(ingestor, recorder, **kwargs):
        options = {"capacity": 2000, "max_batch": 200, "max_wait_s": 0.05, "quiet_s": 0.005} | kwargs
        writer = BatchWriter(ingestor, publish=recorder.publish, ack=recorder.ack, **options)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.stop(5)


def test_queued_messages_are_committed_in_batches_of_at_most_max_batch(make_writer):
    ingestor, recorder = FakeIngestor(), Recorder()
    writer = make_writer(ingestor, recorder, max_batch=200)
    for mid in range(1, 1001):
        writer.submit(pending(mid))
    writer.start()
    wait_for(lambda: len(recorder.acks()) == 1000, 10, "1000 broker acks")
    assert sum(ingestor.batches) == 1000
    assert max(ingestor.batches) <= 200 and len(ingestor.batches) <= 10
    assert recorder.acks() == list(range(1, 1001))  # every message, in arrival order


def test_terminal_acks_go_out_before_broker_acks_one_message_per_terminal(make_writer):
    ingestor, recorder = FakeIngestor(), Recorder()
    writer = make_writer(ingestor, recorder, max_batch=1200)
    batch = [pending(mid, device=f"gate-{mid % 3}") for mid in range(1, 1201)]
    for item in batch:
        writer.submit(item)
    writer.start()
    wait_for(lambda: len(recorder.acks()) == 1200, 10, "1200 broker acks")
    assert ingestor.batches == [1200]
    first_ack = next(i for i, (kind, _m) in enumerate(recorder.log) if kind == "ack")
    assert all(kind == "publish" for kind, _item in recorder.log[:first_ack])
    published = recorder.published()
    assert all(len(ids) <= MAX_ACK_IDS for _topic, ids in published)
    # 400 events per terminal: one ack message each (at most 500 ids per message)
    assert sorted(topic for topic, _ids in published) == sorted(acks_topic("site-a", f"gate-{k}") for k in range(3))
    acked = {i for _topic, ids in published for i in ids}
    assert acked == {item.message.payload.decode() for item in batch}


def test_more_than_500_events_of_one_terminal_are_acked_in_chunks(make_writer):
    ingestor, recorder = FakeIngestor(), Recorder()
    writer = make_writer(ingestor, recorder, max_batch=1200)
    for mid in range(1, 1201):
        writer.submit(pending(mid))
    writer.start()
    wait_for(lambda: len(recorder.acks()) == 1200, 10, "1200 broker acks")
    assert [len(ids) for _topic, ids in recorder.published()] == [500, 500, 200]


def test_a_lone_message_is_not_held_for_the_whole_wait(make_writer):
    ingestor, recorder = FakeIngestor(), Recorder()
    writer = make_writer(ingestor, recorder, max_wait_s=5.0, quiet_s=0.005)
    writer.start()
    started = time.monotonic()
    writer.submit(pending(1))
    wait_for(lambda: recorder.acks() == [1], 2, "the ack")
    assert time.monotonic() - started < 1.0


def test_a_batch_of_min_batch_is_stored_without_waiting_for_more(make_writer):
    # The senders wait for these acks before sending more: lingering would only stall them.
    ingestor, recorder = FakeIngestor(), Recorder()
    writer = make_writer(ingestor, recorder, min_batch=50, max_wait_s=5.0, quiet_s=2.0)
    for mid in range(1, 51):
        writer.submit(pending(mid))
    started = time.monotonic()
    writer.start()
    wait_for(lambda: len(recorder.acks()) == 50, 2, "50 broker acks")
    assert time.monotonic() - started < 1.0
    assert ingestor.batches == [50]


def test_a_small_batch_waits_for_messages_that_keep_coming(make_writer):
    ingestor, recorder = FakeIngestor(), Recorder()
    writer = make_writer(ingestor, recorder, min_batch=50, max_wait_s=5.0, quiet_s=0.5)
    writer.start()
    for mid in range(1, 6):
        writer.submit(pending(mid))
        time.sleep(0.05)  # well inside quiet_s: the batch stays open
    wait_for(lambda: len(recorder.acks()) == 5, 3, "5 broker acks")
    assert ingestor.batches == [5]


def test_database_down_holds_the_batch_unacked_and_retries(make_writer):
    ingestor, recorder = FakeIngestor(down_for=2), Recorder()
    writer = make_writer(ingestor, recorder)
    writer.submit(pending(1))
    writer.start()
    time.sleep(0.3)
    assert recorder.log == []  # first retry after 0.5 s: nothing acked meanwhile
    wait_for(lambda: recorder.acks() == [1], 5, "the ack after the database is back")
    assert ingestor.batches == [1]


def test_stopping_while_the_database_is_down_acks_nothing(make_writer):
    ingestor, recorder = FakeIngestor(down_for=1000), Recorder()
    writer = make_writer(ingestor, recorder)
    writer.submit(pending(1))
    writer.start()
    time.sleep(0.2)
    writer.stop(5)
    assert recorder.log == []
    assert not writer.submit(pending(2))  # refused once stopping: the broker keeps it


def test_a_full_queue_holds_the_submitter_until_the_writer_catches_up(make_writer):
    ingestor, recorder = FakeIngestor(), Recorder()
    writer = make_writer(ingestor, recorder, capacity=10)
    for mid in range(1, 11):
        assert writer.submit(pending(mid))
    done = threading.Event()
    threading.Thread(target=lambda: (writer.submit(pending(11)), done.set()), daemon=True).start()
    assert not done.wait(0.3)  # blocked: the queue is full
    writer.start()
    assert done.wait(5)
    wait_for(lambda: len(recorder.acks()) == 11, 5, "11 acks")


def test_share_group_members_without_an_id_of_their_own_get_one_and_a_clean_session():
    assert session_identity(ServerSettings()) == ("guardpost-ingest", True)
    assert session_identity(ServerSettings(ingest_client_id="ingest-2", share_group="g")) == ("ingest-2", True)
    client_id, persistent = session_identity(ServerSettings(share_group="g"))
    assert client_id.startswith("guardpost-ingest-") and client_id != "guardpost-ingest" and not persistent
