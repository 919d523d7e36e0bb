"""A Kafka client eventline did not write (confluent-kafka, Python) on the other end of the
interoperability test in ../interop_confluent.rs.

    confluent_peer.py consume BROKERS TOPIC COUNT
        Reads COUNT records from the beginning of TOPIC in a fresh consumer group; prints one JSON
        line per record: {"partition", "offset", "key", "value", "headers": [[name, value]]},
        keys and values hex-encoded so bytes survive exactly.
    confluent_peer.py produce BROKERS TOPIC
        Reads JSON lines {"key", "value", "headers": {name: value}} (text) from stdin, produces them
        with Java's partitioner (murmur2_random) and acks=all, and prints one JSON line
        {"partition", "offset"} per record once delivered, in input order.
"""

import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer


def hexed(data):
    return None if data is None else data.hex()


def consume(brokers, topic, count):
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"interop-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append(
            {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": hexed(msg.key()),
                "value": hexed(msg.value()),
                "headers": [[k, hexed(v)] for k, v in (msg.headers() or [])],
            }
        )
    consumer.close()
    for record in got:
        print(json.dumps(record))
    if len(got) < count:
        sys.exit(f"read {len(got)} of {count} records from {topic} within 60 s")


def produce(brokers, topic):
    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    lines = [json.loads(line) for line in sys.stdin if line.strip()]
    results = [None] * len(lines)

    def report(index):
        def on_delivery(err, msg):
            if err is not None:
                results[index] = {"error": str(err)}
            else:
                results[index] = {"partition": msg.partition(), "offset": msg.offset()}

        return on_delivery

    for i, line in enumerate(lines):
        headers = [(k, v.encode()) for k, v in line.get("headers", {}).items()]
        producer.produce(
            topic,
            key=line["key"].encode(),
            value=line["value"].encode(),
            headers=headers,
            on_delivery=report(i),
        )
    left = producer.flush(30)
    if left:
        sys.exit(f"{left} records not delivered within 30 s")
    for r in results:
        print(json.dumps(r))
    if any("error" in r for r in results):
        sys.exit("some records failed")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "consume":
        consume(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
