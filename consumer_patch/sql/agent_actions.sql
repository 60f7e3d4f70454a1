-- Table of stored agent actions. One column per field of the agent action,
-- plus the source record's coordinates. The uniqueness constraint on the
-- coordinates makes redelivery idempotent: a record delivered twice (after a
-- crash before the offset commit, or a rebalance) is stored once.
CREATE TABLE IF NOT EXISTS agent_actions (
    id               bigserial   PRIMARY KEY,
    correlation_id   text        NOT NULL,
    agent_name       text        NOT NULL,
    action_type      text        NOT NULL,
    action_name      text        NOT NULL,
    action_details   jsonb,
    debug_mode       boolean     NOT NULL DEFAULT false,
    duration_ms      bigint      CHECK (duration_ms IS NULL OR duration_ms >= 0),
    "timestamp"      timestamptz NOT NULL,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_actions_source_record_key
        UNIQUE (source_topic, source_partition, source_offset)
);

CREATE INDEX IF NOT EXISTS agent_actions_correlation_id_idx
    ON agent_actions (correlation_id);
