"""Events between services over NATS JetStream: subjects, the envelope, outbox, inbox, KV."""
