"""Kafka messaging for every service: CloudEvents envelopes, topics, the FastStream broker,
publishers and subscribers with bounded retries and a dead-letter queue.

Modules (import what you use; importing this package imports no Kafka client):

- `cloudevents`: `EventEnvelope`, `encode`/`decode` (binary content mode), `InvalidCloudEvent`
- `settings`: `KafkaSettings`
- `admin`: `ensure_topics`, `repair_topics`, `dlq_topic`
- `broker`: `create_broker`
- `publisher`: `EnvelopePublisher`
- `subscriber`: `subscribe_envelopes`, `subscribe_envelope_batches`, `EnvelopeConsumer`
- `processing`: `RetryPolicy`, `EnvelopeProcessor`, the `dlq_*` header names
- `asyncapi`: `render_asyncapi`, `write_asyncapi`
"""
