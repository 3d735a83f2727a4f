"""The Kafka bus on kafka-python: producer, consumer loop, topic admin and their metrics."""
