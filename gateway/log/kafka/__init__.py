"""Apache Kafka through aiokafka: this package is the only place that imports it.

`KafkaLog` (appends with an idempotent producer), `KafkaConsumer` (commits as per-partition
transactions), `KafkaLease` (one holder among replicas). aiokafka ships no types; its
objects are `Any` here and never leave the package.
"""

from gateway.log.kafka.common import client_options
from gateway.log.kafka.consumer import Holdings, KafkaConsumer
from gateway.log.kafka.lease import KafkaLease
from gateway.log.kafka.log import KafkaLog, check_partitions

__all__ = [
    "Holdings",
    "KafkaConsumer",
    "KafkaLease",
    "KafkaLog",
    "check_partitions",
    "client_options",
]
